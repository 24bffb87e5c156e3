"""The Kafka-protocol adapter in front of Tansu: byte-level rewrites, then real round trips.

Requests and responses are encoded with aiokafka's own protocol types (an encoder written
independently of the adapter), so the bytes are what a real client and broker exchange.
"""

from __future__ import annotations

import asyncio
import struct
from io import BytesIO

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.protocol.transaction import InitProducerIdRequest_v0
from aiokafka.protocol.types import (
    CompactString,
    Int16,
    Int32,
    Int64,
    Schema,
    String,
    TaggedFields,
)

from pytest_eng5.stack.infra import Infrastructure
from pytest_eng5.stack.kafka_adapter import (
    Connection,
    ProtocolError,
    decode_uvarint,
    encode_uvarint,
    init_producer_id_v0_response,
    parse_request_header,
)
from pytest_eng5.stack.kafka_topics import ensure_topics_async
from pytest_eng5.stack.tansu import EmbeddedKafka

REQUEST_HEADER_V1 = Schema(
    ("api_key", Int16),
    ("api_version", Int16),
    ("correlation_id", Int32),
    ("client_id", String("utf-8")),
)
REQUEST_HEADER_V2 = Schema(
    ("api_key", Int16),
    ("api_version", Int16),
    ("correlation_id", Int32),
    ("client_id", String("utf-8")),
    ("tags", TaggedFields),
)
INIT_V0_BODY = InitProducerIdRequest_v0.SCHEMA
INIT_V3_BODY = Schema(
    ("transactional_id", CompactString("utf-8")),
    ("transaction_timeout_ms", Int32),
    ("producer_id", Int64),
    ("producer_epoch", Int16),
    ("tags", TaggedFields),
)
RESPONSE_HEADER_V1 = Schema(("correlation_id", Int32), ("tags", TaggedFields))
INIT_V0_RESPONSE = Schema(
    ("correlation_id", Int32),
    ("throttle_time_ms", Int32),
    ("error_code", Int16),
    ("producer_id", Int64),
    ("producer_epoch", Int16),
)
INIT_V3_RESPONSE_BODY = Schema(
    ("throttle_time_ms", Int32),
    ("error_code", Int16),
    ("producer_id", Int64),
    ("producer_epoch", Int16),
    ("tags", TaggedFields),
)


def decode(schema: Schema, payload: bytes) -> list[object]:
    stream = BytesIO(payload)
    values = [field.decode(stream) for field in schema.fields]
    assert stream.read() == b"", "bytes left over after the last field"
    return values


def init_request(version: int, correlation_id: int, transactional_id: str | None) -> bytes:
    header = REQUEST_HEADER_V1.encode([22, version, correlation_id, "aiokafka-0.14.0"])
    return header + INIT_V0_BODY.encode([transactional_id, 60_000])


def v3_response(correlation_id: int, error: int, producer_id: int, epoch: int) -> bytes:
    return RESPONSE_HEADER_V1.encode([correlation_id, {}]) + INIT_V3_RESPONSE_BODY.encode(
        [5, error, producer_id, epoch, {}]
    )


# --- byte level ---------------------------------------------------------------------------


@pytest.mark.parametrize("version", [0, 1])
@pytest.mark.parametrize("transactional_id", [None, "txn-eng5"])
def test_init_producer_id_request_is_rewritten_to_v3(
    version: int, transactional_id: str | None
) -> None:
    rewritten = Connection().to_upstream(init_request(version, 41, transactional_id))

    header_length = len(REQUEST_HEADER_V2.encode([22, 3, 41, "aiokafka-0.14.0", {}]))
    assert decode(REQUEST_HEADER_V2, rewritten[:header_length]) == [
        22,
        3,
        41,
        "aiokafka-0.14.0",
        {},
    ]
    assert decode(INIT_V3_BODY, rewritten[header_length:]) == [
        transactional_id,
        60_000,
        -1,
        -1,
        {},
    ]


def test_rewritten_request_matches_the_hand_encoded_bytes() -> None:
    rewritten = Connection().to_upstream(init_request(0, 7, None))
    expected = bytes.fromhex(
        "0016 0003 00000007"  # api_key 22, api_version 3, correlation id 7
        "000f" + b"aiokafka-0.14.0".hex() + "00"  # client_id, header tagged fields
        "00"  # transactional_id: compact null
        "0000ea60"  # transaction_timeout_ms 60000
        "ffffffffffffffff ffff 00"  # producer_id -1, epoch -1, body tagged fields
    )
    assert rewritten == expected


@pytest.mark.parametrize("version", [0, 1])
def test_v3_response_is_converted_back_to_the_version_the_client_sent(version: int) -> None:
    connection = Connection()
    connection.to_upstream(init_request(version, 99, None))

    answer = connection.to_client(v3_response(99, 0, 4242, 3))

    assert decode(INIT_V0_RESPONSE, answer) == [99, 5, 0, 4242, 3]


def test_response_with_header_tagged_fields_is_converted() -> None:
    connection = Connection()
    connection.to_upstream(init_request(0, 12, None))
    # Tagged fields by hand (count, then tag, size, data each): aiokafka's encoder omits sizes.
    tagged = struct.pack(">i", 12) + bytes.fromhex("02 00 03") + b"xyz" + bytes.fromhex("03 00")
    body = struct.pack(">ihqh", 0, 47, -1, -1) + bytes.fromhex("01 01 01") + b"q"

    assert decode(INIT_V0_RESPONSE, connection.to_client(tagged + body)) == [12, 0, 47, -1, -1]


def test_other_frames_pass_through_byte_for_byte() -> None:
    connection = Connection()
    v3_request = REQUEST_HEADER_V2.encode([22, 3, 5, "java", {}]) + INIT_V3_BODY.encode(
        [None, 1000, -1, -1, {}]
    )
    metadata_v1 = REQUEST_HEADER_V1.encode([3, 1, 6, "aiokafka"]) + struct.pack(">i", -1)
    produce_like = REQUEST_HEADER_V1.encode([0, 7, 8, None]) + b"\x00" * 40
    for request in (v3_request, metadata_v1, produce_like):
        assert connection.to_upstream(request) is request
    assert connection.rewritten == {}
    response = struct.pack(">i", 6) + b"\x01\x02\x03"
    assert connection.to_client(response) is response


def test_only_the_rewritten_correlation_id_is_converted() -> None:
    connection = Connection()
    connection.to_upstream(init_request(0, 20, None))
    unrelated = v3_response(19, 0, 1, 1)  # same shape, another request's answer

    assert connection.to_client(unrelated) is unrelated
    assert connection.rewritten == {20: 0}
    connection.to_client(v3_response(20, 0, 1, 1))
    assert connection.rewritten == {}


def test_truncated_init_producer_id_request_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="unexpected length"):
        Connection().to_upstream(init_request(0, 1, None)[:-1])
    with pytest.raises(ProtocolError, match="shorter than a header"):
        parse_request_header(b"\x00\x16")


def test_truncated_v3_response_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="too short"):
        init_producer_id_v0_response(v3_response(1, 0, 1, 1)[:-4])


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 16_384, 2**31 - 1])
def test_uvarint_round_trips(value: int) -> None:
    encoded = encode_uvarint(value)
    assert decode_uvarint(encoded, 0) == (value, len(encoded))


# --- over the embedded broker -------------------------------------------------------------


@pytest.mark.asyncio
async def test_idempotent_producer_and_group_consumer_round_trip(
    embedded_infra: Infrastructure,
) -> None:
    """acks=all + idempotence produce, a consumer group reads; metadata names the adapter."""
    kafka = embedded_infra.kafka
    adapter = ("127.0.0.1", int(kafka.bootstrap.rpartition(":")[2]))
    assert kafka.producer_kwargs()["enable_idempotence"] is True
    topic = "eng5.adapter.round-trip"
    await ensure_topics_async(kafka, [topic], partitions=1)
    producer = AIOKafkaProducer(**kafka.producer_kwargs())
    await producer.start()
    try:
        sent = [await producer.send_and_wait(topic, f"m{i}".encode()) for i in range(5)]
    finally:
        await producer.stop()
    assert [record.offset for record in sent] == [0, 1, 2, 3, 4]

    consumer = AIOKafkaConsumer(
        topic,
        group_id="eng5-adapter-group",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **kafka.consumer_kwargs(),
    )
    await consumer.start()
    try:
        received: list[bytes] = []
        async with asyncio.timeout(30):
            while len(received) < 5:
                batch = await consumer.getmany(timeout_ms=500)
                received.extend(m.value for msgs in batch.values() for m in msgs if m.value)
        await consumer.commit()
        committed = await consumer.committed(next(iter(consumer.assignment())))
        cluster = consumer._client.cluster
        brokers = {(broker.host, broker.port) for broker in cluster.brokers()}
        coordinator = cluster.broker_metadata(consumer._coordinator.coordinator_id)
    finally:
        await consumer.stop()
    assert received == [f"m{i}".encode() for i in range(5)]
    assert committed == 5
    assert brokers == {adapter}  # Metadata names the adapter, never Tansu's own port
    assert coordinator is not None
    assert (coordinator.host, coordinator.port) == adapter  # and so does FindCoordinator


@pytest.mark.asyncio
async def test_tansu_itself_still_rejects_init_producer_id_v0(
    embedded_infra: Infrastructure,
) -> None:
    """Why the adapter exists: when this fails, Tansu was fixed and the adapter can go."""
    (handle,) = [h for h in embedded_infra.processes if isinstance(h, EmbeddedKafka)]
    listener = handle.broker.argv[handle.broker.argv.index("--listener-url") + 1]
    broker_port = int(listener.rpartition(":")[2])
    assert f"{broker_port}" != embedded_infra.kafka.bootstrap.rpartition(":")[2]
    reader, writer = await asyncio.open_connection("127.0.0.1", broker_port)
    try:
        request = init_request(0, 3, None)
        writer.write(struct.pack(">i", len(request)) + request)
        await writer.drain()
        async with asyncio.timeout(10):
            size = struct.unpack(">i", await reader.readexactly(4))[0]
            answer = await reader.readexactly(size)
    finally:
        writer.close()
        await writer.wait_closed()
    correlation_id, _, error_code, _, _ = decode(INIT_V0_RESPONSE, answer)
    assert correlation_id == 3
    assert error_code == -1  # UNKNOWN_SERVER_ERROR
