"""R2: the canonical batch uuid travels on the wire; the human label stays for people."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest

pytestmark = pytest.mark.eng5_scenario("R2")


def test_uuid_is_the_wire_id_and_label_is_metadata(
    eng5_runner_factory, request_watch, sample, own_cache
) -> None:
    runner = eng5_runner_factory(**sample, **own_cache, batch_label="pilot run #1", no_await=True)
    result = runner.execute()
    (envelope,) = request_watch.new_requests()
    batch_id = result.batch_uuid
    assert str(uuid.UUID(batch_id)) == batch_id
    assert envelope.data["entity_id"] == batch_id
    assert envelope.data["system_metadata"]["entity_id"] == batch_id
    assert envelope.metadata["batch_label"] == "pilot run #1"
    assert "pilot" not in batch_id
    assert result.evidence_dir is not None
    assert result.evidence_dir.name == batch_id
    request = json.loads((result.evidence_dir / "request.json").read_text())
    assert request["event_id"] == str(envelope.event_id)


def test_the_kafka_key_is_the_batch_uuid(
    eng5_runner_factory, eng5_stack, sample, own_cache
) -> None:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from pytest_eng5.contracts import REQUEST_TOPIC

    result = eng5_runner_factory(**sample, **own_cache, no_await=True).execute()

    async def last_key() -> bytes:
        consumer = AIOKafkaConsumer(**eng5_stack.kafka.consumer_kwargs())
        await consumer.start()
        try:
            tp = TopicPartition(REQUEST_TOPIC, 0)
            consumer.assign([tp])
            end = (await consumer.end_offsets([tp]))[tp]
            consumer.seek(tp, end - 1)
            record = await consumer.getone()
            return bytes(record.key)
        finally:
            await consumer.stop()

    assert asyncio.run(last_key()).decode() == result.batch_uuid


def test_concurrent_batches_each_see_only_their_own_events(
    eng5_runner_factory, sample, own_cache
) -> None:
    first = eng5_runner_factory(**sample, **own_cache, batch_label="first")
    second = eng5_runner_factory(**sample, **own_cache, batch_label="second")

    async def both() -> tuple[Any, Any]:
        return await asyncio.gather(first.aio.execute(), second.aio.execute())

    one, two = asyncio.run(both())
    assert one.batch_uuid != two.batch_uuid
    for result in (one, two):
        assert result.outcome == "completed"
        assert result.comparisons > 0
        events = [
            json.loads(line)
            for line in (result.evidence_dir / "events.jsonl").read_text().splitlines()
        ]
        callbacks = [e for e in events if e["kind"] == "callback" and not e.get("duplicate")]
        assert len(callbacks) == result.comparisons
        batch_ids = {e["envelope"]["data"]["request_metadata"]["bos_batch_id"] for e in callbacks}
        assert batch_ids == {result.batch_uuid}


def test_reattach_by_uuid_collects_the_earlier_batch(
    eng5_runner_factory, sample, own_cache
) -> None:
    published = eng5_runner_factory(**sample, **own_cache, no_await=True).execute()
    assert published.outcome == "published"
    attached = eng5_runner_factory(**sample, **own_cache, batch_uuid=published.batch_uuid).attach()
    assert attached.batch_uuid == published.batch_uuid
    assert attached.outcome == "completed"
    assert attached.comparisons > 0
    assert attached.evidence_dir == published.evidence_dir
    record = json.loads(attached.artefact_path.read_text())["validation"]["runner_status"]
    recorded = json.loads((published.evidence_dir / "assessment_run.json").read_text())
    assert (
        record["collector_offsets"] == recorded["validation"]["runner_status"]["collector_offsets"]
    ), "attach starts where the publishing run positioned its collector"
    assert record["publish"] is not None, "the publish offset is carried over"
    lines_after_attach = _event_keys(attached.evidence_dir)
    assert len(lines_after_attach) == len(set(lines_after_attach)), "no event written twice"
    again = eng5_runner_factory(**sample, **own_cache, batch_uuid=published.batch_uuid).attach()
    assert again.outcome == "completed"
    assert _event_keys(again.evidence_dir) == lines_after_attach, "a second attach adds nothing"


def test_execute_of_a_published_batch_uuid_reattaches_instead_of_republishing(
    eng5_runner_factory, request_watch, sample, own_cache
) -> None:
    published = eng5_runner_factory(**sample, **own_cache, no_await=True).execute()
    again = eng5_runner_factory(**sample, **own_cache, batch_uuid=published.batch_uuid).execute()
    assert again.outcome == "completed"
    assert any("re-attaching instead of publishing" in m for m in again.messages)
    assert len(request_watch.new_requests()) == 1, "the batch was published once"


def _event_keys(folder) -> list[tuple[str, int, int]]:
    lines = (folder / "events.jsonl").read_text().splitlines()
    return [(e["topic"], e["partition"], e["offset"]) for e in map(json.loads, lines)]
