"""Names shared by the settings, the runner, the stack and the reference services (one each)."""

from __future__ import annotations

from typing import Final, Literal, get_args

StackKind = Literal["embedded", "testcontainers", "external"]
STACK_KINDS: Final[tuple[str, ...]] = get_args(StackKind)

#: The broker of the embedded stack: Tansu (bundled) or an Apache Kafka KRaft cluster.
KafkaProvider = Literal["tansu", "apache"]
KAFKA_PROVIDERS: Final[tuple[str, ...]] = get_args(KafkaProvider)

#: Nodes of the embedded Apache Kafka cluster (one, or three for replication).
ApacheBrokerCount = Literal[1, 3]
APACHE_BROKER_COUNTS: Final[tuple[int, ...]] = get_args(ApacheBrokerCount)

#: Kafka client security: the settings' choices and what a stack config accepts.
SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SECURITY_PROTOCOLS: Final[tuple[str, ...]] = get_args(SecurityProtocol)
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
SASL_MECHANISMS: Final[tuple[str, ...]] = get_args(SaslMechanism)

#: The reference services a fault knob can target (``/_test/faults`` and the stack factory).
FaultService = Literal["content", "cj-api", "cj-worker"]
FAULT_SERVICES: Final[tuple[FaultService, ...]] = get_args(FaultService)

JudgeName = Literal["text_features", "coin_flip", "llm_http"]
JUDGE_NAMES: Final[tuple[str, ...]] = get_args(JudgeName)
DEFAULT_JUDGE: Final[JudgeName] = "text_features"

#: The scale HuleEdu's CJ service falls back to when no assignment (instruction row) names one:
#: the column default and the grade projector's fallback (contracts E.11).
DEFAULT_GRADE_SCALE: Final = "swedish_8_anchor"

#: A different fact, hence a different name: the scale HuleEdu's ENG5 runner reads anchor file
#: names with while no assignment is given (plan, dry-run, execute without ``assignment_id``).
#: With an assignment the CJ preflight's scale replaces it.
RUNNER_FALLBACK_GRADE_SCALE: Final = "eng5_np_legacy_9_step"

#: The runner modes as the CJ preflight names them (they decide what a missing assignment means).
PreflightMode = Literal["plan", "dry-run", "execute", "anchor-align-test", "register-anchors"]
PREFLIGHT_MODES: Final[tuple[str, ...]] = get_args(PreflightMode)

#: HuleEdu's MAX_PAIRWISE_COMPARISONS: CJ's own cap on the comparisons of one batch
MAX_PAIRWISE_COMPARISONS: Final = 120
