"""R7: uploads are cached by content; --force-reupload re-uploads; a resume uploads the rest."""

from __future__ import annotations

import json
import uuid

import pytest

from pytest_eng5.errors import UploadError

pytestmark = pytest.mark.eng5_scenario("R7")


def test_first_run_uploads_all_second_none_force_all(
    eng5_runner_factory, eng5_stack, sample, own_cache
) -> None:
    counts = []
    for force in (False, False, True):
        before = eng5_stack.content_uploads()
        result = eng5_runner_factory(
            **sample, **own_cache, no_kafka=True, force_reupload=force
        ).execute()
        assert result.outcome == "not_published"
        counts.append((eng5_stack.content_uploads() - before, result.uploaded, result.reused))
    assert counts == [(24, 24, 0), (0, 0, 24), (24, 24, 0)]
    cache = json.loads(own_cache["cache_file"].read_text())
    assert len(cache["entries"]) == 24


def test_partial_failure_then_resume_uploads_only_the_rest(
    eng5_runner_factory, clean_faults, sample, own_cache
) -> None:
    clean_faults.set_faults(
        "content", http_pass_first=10, http_5xx_count=1000, http_path_prefix="/v1/content"
    )
    with pytest.raises(UploadError) as info:
        eng5_runner_factory(**sample, **own_cache, no_kafka=True).execute()
    assert "re-run" in info.value.next_step
    cached = json.loads(own_cache["cache_file"].read_text())["entries"]
    assert len(cached) == 10, "the uploads that succeeded are kept"

    clean_faults.clear_faults()
    before = clean_faults.content_uploads()
    resumed = eng5_runner_factory(**sample, **own_cache, no_kafka=True).execute()
    assert (resumed.uploaded, resumed.reused) == (14, 10)
    assert clean_faults.content_uploads() - before == 14


def test_cached_ids_a_new_embedded_stack_lacks_are_uploaded_again(
    eng5_runner_factory, eng5_stack, sample, own_cache
) -> None:
    """The embedded stack's storage ends with it, and a later one may listen on the same URL:
    its cached ids are checked, so ids it lacks are uploaded again, not sent to CJ."""
    if not eng5_stack.is_reference:
        pytest.skip("an external Content Service keeps its blobs; see --eng5-verify-uploads")
    eng5_runner_factory(**sample, **own_cache, no_kafka=True).execute()
    path = own_cache["cache_file"]
    cache = json.loads(path.read_text())
    for entry in cache["entries"].values():  # as if written by an earlier stack on this URL
        entry["storage_id"] = uuid.uuid4().hex
    path.write_text(json.dumps(cache))

    before = eng5_stack.content_uploads()
    result = eng5_runner_factory(**sample, **own_cache).execute()
    assert result.outcome == "completed"
    assert (result.uploaded, result.reused) == (len(cache["entries"]), 0)
    assert eng5_stack.content_uploads() - before == len(cache["entries"])
