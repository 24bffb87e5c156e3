-- Tables of the reference CJ Assessment and Content services.
-- Names and key columns follow HuleEdu (contracts §B.1, §B.2, §C.3, §E.13), so the R5 extraction
-- queries run unchanged against this database and against a HuleEdu CJ database.
-- Idempotent: safe to apply on every start.

CREATE TABLE IF NOT EXISTS stored_content (
    content_id     varchar(32) PRIMARY KEY,
    content_data   bytea NOT NULL,
    content_size   integer NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    correlation_id uuid NULL,
    content_type   varchar(100) NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_stored_content_created_at ON stored_content (created_at);

CREATE TABLE IF NOT EXISTS assessment_instructions (
    id                        serial PRIMARY KEY,
    assignment_id             varchar(100) NULL UNIQUE,
    course_id                 varchar(50) NULL,
    instructions_text         text NOT NULL,
    grade_scale               varchar(50) NOT NULL DEFAULT 'swedish_8_anchor',
    context_origin            varchar(64) NOT NULL DEFAULT 'research_experiment',
    student_prompt_storage_id varchar(255) NULL,
    judge_rubric_storage_id   varchar(255) NULL,
    created_at                timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT chk_context_type CHECK ((assignment_id IS NULL) <> (course_id IS NULL))
);
CREATE INDEX IF NOT EXISTS ix_assessment_instructions_course_id ON assessment_instructions (course_id);
CREATE INDEX IF NOT EXISTS ix_assessment_instructions_grade_scale ON assessment_instructions (grade_scale);

CREATE TABLE IF NOT EXISTS anchor_essay_references (
    id              serial PRIMARY KEY,
    anchor_label    varchar(255) NOT NULL,
    grade           varchar(4) NOT NULL,
    grade_scale     varchar(50) NOT NULL DEFAULT 'swedish_8_anchor',
    text_storage_id varchar(255) NOT NULL,
    assignment_id   varchar(100) NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT uq_anchor_assignment_label_scale UNIQUE (assignment_id, anchor_label, grade_scale)
);
CREATE INDEX IF NOT EXISTS ix_anchor_essay_references_assignment_id
    ON anchor_essay_references (assignment_id);

DO $$ BEGIN
    CREATE TYPE cj_batch_status_enum AS ENUM (
        'PENDING', 'FETCHING_CONTENT', 'PERFORMING_COMPARISONS', 'COMPLETE_FORCED_RECOVERY',
        'COMPLETE_STABLE', 'COMPLETE_MAX_COMPARISONS', 'COMPLETE_INSUFFICIENT_ESSAYS',
        'ERROR_PROCESSING', 'ERROR_ESSAY_PROCESSING');
EXCEPTION WHEN duplicate_object THEN NULL; END $$;

DO $$ BEGIN
    CREATE TYPE cj_batch_state_enum AS ENUM (
        'INITIALIZING', 'GENERATING_PAIRS', 'WAITING_CALLBACKS', 'SCORING', 'COMPLETED',
        'FAILED', 'CANCELLED');
EXCEPTION WHEN duplicate_object THEN NULL; END $$;

CREATE TABLE IF NOT EXISTS cj_batch_uploads (
    id                   serial PRIMARY KEY,
    bos_batch_id         varchar(36) NOT NULL,
    event_correlation_id varchar(36) NOT NULL,
    language             varchar(10) NOT NULL,
    course_code          varchar(50) NOT NULL,
    expected_essay_count integer NOT NULL,
    status               cj_batch_status_enum NOT NULL DEFAULT 'PENDING',
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    completed_at         timestamptz NULL,
    processing_metadata  jsonb NULL,
    assignment_id        varchar(100) NULL,
    user_id              varchar(255) NULL,
    org_id               varchar(255) NULL
);
CREATE INDEX IF NOT EXISTS ix_cj_batch_uploads_bos_batch_id ON cj_batch_uploads (bos_batch_id);

CREATE TABLE IF NOT EXISTS cj_batch_states (
    batch_id                  integer PRIMARY KEY REFERENCES cj_batch_uploads (id) ON DELETE CASCADE,
    state                     cj_batch_state_enum NOT NULL DEFAULT 'INITIALIZING',
    total_budget              integer NULL,
    total_comparisons         integer NOT NULL DEFAULT 0,
    submitted_comparisons     integer NOT NULL DEFAULT 0,
    completed_comparisons     integer NOT NULL DEFAULT 0,
    failed_comparisons        integer NOT NULL DEFAULT 0,
    last_activity_at          timestamptz NOT NULL DEFAULT now(),
    partial_scoring_triggered boolean NOT NULL DEFAULT false,
    completion_threshold_pct  integer NOT NULL DEFAULT 95,
    current_iteration         integer NOT NULL DEFAULT 0,
    processing_metadata       jsonb NULL
);

CREATE TABLE IF NOT EXISTS cj_processed_essays (
    els_essay_id          varchar(36) PRIMARY KEY,
    cj_batch_id           integer NOT NULL REFERENCES cj_batch_uploads (id) ON DELETE CASCADE,
    text_storage_id       varchar(256) NOT NULL,
    assessment_input_text text NOT NULL,
    current_bt_score      double precision NULL,
    current_bt_se         double precision NULL,
    comparison_count      integer NOT NULL DEFAULT 0,
    is_anchor             boolean NOT NULL DEFAULT false,
    processing_metadata   jsonb NULL
);
CREATE INDEX IF NOT EXISTS ix_cj_processed_essays_batch ON cj_processed_essays (cj_batch_id);

CREATE TABLE IF NOT EXISTS cj_comparison_pairs (
    id                     serial PRIMARY KEY,
    cj_batch_id            integer NOT NULL REFERENCES cj_batch_uploads (id) ON DELETE CASCADE,
    essay_a_els_id         varchar(36) NOT NULL,
    essay_b_els_id         varchar(36) NOT NULL,
    prompt_text            text NOT NULL,
    request_correlation_id uuid NULL UNIQUE,
    submitted_at           timestamptz NULL,
    completed_at           timestamptz NULL,
    winner                 varchar(20) NULL,
    confidence             double precision NULL,
    justification          text NULL,
    raw_llm_response       text NULL,
    error_code             varchar(100) NULL,
    error_correlation_id   uuid NULL,
    error_timestamp        timestamptz NULL,
    error_service          varchar(100) NULL,
    error_details          jsonb NULL,
    processing_metadata    jsonb NULL,
    pair_generation_mode   varchar(20) NULL
);
CREATE INDEX IF NOT EXISTS ix_cj_comparison_pairs_batch ON cj_comparison_pairs (cj_batch_id);

CREATE TABLE IF NOT EXISTS grade_projections (
    els_essay_id         varchar(36) NOT NULL,
    cj_batch_id          integer NOT NULL REFERENCES cj_batch_uploads (id) ON DELETE CASCADE,
    primary_grade        varchar(4) NOT NULL,
    grade_scale          varchar(50) NOT NULL,
    confidence_score     double precision NOT NULL,
    confidence_label     varchar(10) NOT NULL,
    calculation_metadata jsonb NULL,
    population_prior     double precision NULL,
    assessment_method    varchar(50) NOT NULL DEFAULT 'cj_assessment',
    model_used           varchar(100) NULL,
    model_provider       varchar(50) NULL,
    normalized_score     double precision NULL,
    PRIMARY KEY (els_essay_id, cj_batch_id)
);

CREATE TABLE IF NOT EXISTS event_outbox (
    id             uuid PRIMARY KEY,
    aggregate_id   varchar(255) NOT NULL,
    aggregate_type varchar(50) NOT NULL,
    event_type     varchar(255) NOT NULL,
    event_data     jsonb NOT NULL,
    event_key      varchar(255) NULL,
    topic          varchar(255) NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    published_at   timestamptz NULL,
    retry_count    integer NOT NULL DEFAULT 0,
    last_error     text NULL
);
