"""A Kafka-protocol adapter in front of the embedded Tansu broker.

Tansu 0.6.0 answers InitProducerId v0 and v1 (what aiokafka sends when a producer is
idempotent) with UnknownError, yet answers v3 correctly. The adapter accepts client
connections, opens one broker connection for each, and copies frames both ways; it
rewrites InitProducerId v0/v1 requests to v3 and turns the v3 answer back into the
version the client asked for. Every other frame passes through byte for byte.

Tansu advertises the adapter's address (``--advertised-listener-url``), so Metadata and
FindCoordinator answers send clients back through the adapter and none bypasses it.

Run it as ``python -m pytest_eng5.stack.kafka_adapter --listen HOST:PORT --upstream HOST:PORT``;
it prints :data:`READY_LINE` once it accepts connections.

Wire formats (Kafka protocol): a frame is an int32 size and that many bytes. A request header
v1 is api_key int16, api_version int16, correlation_id int32, client_id (int16-length nullable
string); header v2 (flexible versions) adds tagged fields. A response header v0 is the
correlation_id; v1 adds tagged fields. InitProducerId v2+ is flexible.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import struct
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

INIT_PRODUCER_ID = 22
#: the versions Tansu 0.6.0 answers with UnknownError
REWRITTEN_VERSIONS = frozenset({0, 1})
UPSTREAM_VERSION = 3
NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
READY_LINE = "kafka adapter listening on"
#: a frame larger than this is a corrupt stream, not a Kafka message
MAX_FRAME_BYTES = 256 * 1024 * 1024

_HEADER = struct.Struct(">hhih")  # api_key, api_version, correlation_id, client_id length
_INIT_V0_BODY_TAIL = struct.Struct(">i")  # transaction_timeout_ms
_INIT_V3_BODY_TAIL = struct.Struct(">iqh")  # transaction_timeout_ms, producer_id, epoch
_INIT_RESPONSE_BODY = struct.Struct(">ihqh")  # throttle, error_code, producer_id, epoch
_CORRELATION_ID = struct.Struct(">i")


class ProtocolError(ValueError):
    """A frame that does not parse as the Kafka message it claims to be."""


@dataclass(frozen=True)
class RequestHeader:
    api_key: int
    api_version: int
    correlation_id: int
    #: the raw client_id field (int16 length + bytes), copied as is
    client_id_field: bytes
    #: offset of the first byte after the client_id field
    end: int


def parse_request_header(payload: bytes) -> RequestHeader:
    """The fixed part of a request header (the same in header v1 and v2)."""
    if len(payload) < _HEADER.size:
        raise ProtocolError(f"request of {len(payload)} bytes is shorter than a header")
    api_key, api_version, correlation_id, client_id_length = _HEADER.unpack_from(payload)
    end = _HEADER.size + max(client_id_length, 0)
    if end > len(payload):
        raise ProtocolError("request header's client_id runs past the frame")
    return RequestHeader(api_key, api_version, correlation_id, payload[_HEADER.size - 2 : end], end)


def encode_uvarint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def decode_uvarint(payload: bytes, offset: int) -> tuple[int, int]:
    """The unsigned varint at ``offset`` and the offset after it."""
    value = shift = 0
    while True:
        if offset >= len(payload) or shift > 28:
            raise ProtocolError("truncated or oversized varint")
        byte = payload[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, offset
        shift += 7


def skip_tagged_fields(payload: bytes, offset: int) -> int:
    count, offset = decode_uvarint(payload, offset)
    for _ in range(count):
        _, offset = decode_uvarint(payload, offset)  # tag
        size, offset = decode_uvarint(payload, offset)
        offset += size
    if offset > len(payload):
        raise ProtocolError("tagged fields run past the frame")
    return offset


def init_producer_id_v3_request(payload: bytes, header: RequestHeader) -> bytes:
    """Rewrite an InitProducerId v0/v1 request (without its size) as v3."""
    offset = header.end
    if offset + 2 > len(payload):
        raise ProtocolError("InitProducerId request ends before transactional_id")
    (length,) = struct.unpack_from(">h", payload, offset)
    offset += 2
    transactional_id = None if length < 0 else payload[offset : offset + length]
    offset += max(length, 0)
    if offset + _INIT_V0_BODY_TAIL.size != len(payload):
        raise ProtocolError("InitProducerId v0/v1 request has an unexpected length")
    (timeout_ms,) = _INIT_V0_BODY_TAIL.unpack_from(payload, offset)
    compact_id = (
        encode_uvarint(0)
        if transactional_id is None
        else encode_uvarint(len(transactional_id) + 1) + transactional_id
    )
    return b"".join(
        (
            struct.pack(">hhi", INIT_PRODUCER_ID, UPSTREAM_VERSION, header.correlation_id),
            header.client_id_field,
            encode_uvarint(0),  # header tagged fields
            compact_id,
            _INIT_V3_BODY_TAIL.pack(timeout_ms, NO_PRODUCER_ID, NO_PRODUCER_EPOCH),
            encode_uvarint(0),  # body tagged fields
        )
    )


def init_producer_id_v0_response(payload: bytes) -> bytes:
    """Turn an InitProducerId v3 response (without its size) into the v0/v1 layout."""
    if len(payload) < _CORRELATION_ID.size:
        raise ProtocolError("response shorter than a correlation id")
    (correlation_id,) = _CORRELATION_ID.unpack_from(payload)
    offset = skip_tagged_fields(payload, _CORRELATION_ID.size)
    if offset + _INIT_RESPONSE_BODY.size > len(payload):
        raise ProtocolError("InitProducerId v3 response is too short")
    body = payload[offset : offset + _INIT_RESPONSE_BODY.size]
    skip_tagged_fields(payload, offset + _INIT_RESPONSE_BODY.size)
    return _CORRELATION_ID.pack(correlation_id) + body


def frame(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


async def read_frame(reader: asyncio.StreamReader) -> bytes | None:
    """The next frame's payload, or None at a clean end of stream."""
    try:
        size_bytes = await reader.readexactly(4)
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise ProtocolError("stream ended inside a frame size") from exc
        return None
    (size,) = struct.unpack(">i", size_bytes)
    if not 0 <= size <= MAX_FRAME_BYTES:
        raise ProtocolError(f"frame size {size} is out of range")
    return await reader.readexactly(size)


class Connection:
    """One client connection and its broker connection; knows which answers to convert."""

    def __init__(self) -> None:
        #: correlation ids of rewritten requests -> the version the client sent
        self.rewritten: dict[int, int] = {}

    def to_upstream(self, payload: bytes) -> bytes:
        header = parse_request_header(payload)
        if header.api_key == INIT_PRODUCER_ID and header.api_version in REWRITTEN_VERSIONS:
            rewritten = init_producer_id_v3_request(payload, header)
            self.rewritten[header.correlation_id] = header.api_version
            return rewritten
        return payload

    def to_client(self, payload: bytes) -> bytes:
        if not self.rewritten or len(payload) < _CORRELATION_ID.size:
            return payload
        (correlation_id,) = _CORRELATION_ID.unpack_from(payload)
        if self.rewritten.pop(correlation_id, None) is None:
            return payload
        return init_producer_id_v0_response(payload)


async def _pump(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    convert: Connection,
    *,
    upstream: bool,
) -> None:
    while (payload := await read_frame(reader)) is not None:
        converted = convert.to_upstream(payload) if upstream else convert.to_client(payload)
        writer.write(frame(converted))
        await writer.drain()


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError, asyncio.CancelledError):
        await writer.wait_closed()


def connection_handler(
    upstream_host: str, upstream_port: int
) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    """A ``start_server`` callback relaying each client to ``upstream_host:upstream_port``."""

    async def handle(
        client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        try:
            broker_reader, broker_writer = await asyncio.open_connection(
                upstream_host, upstream_port
            )
        except OSError:
            await _close(client_writer)
            return
        convert = Connection()
        pumps = [
            asyncio.ensure_future(_pump(client_reader, broker_writer, convert, upstream=True)),
            asyncio.ensure_future(_pump(broker_reader, client_writer, convert, upstream=False)),
        ]
        try:
            # Either side ending (or breaking the protocol) ends the pair.
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            for pump in pumps:
                with contextlib.suppress(BaseException):
                    await pump
            await _close(broker_writer)
            await _close(client_writer)

    return handle


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


async def serve(listen: tuple[str, int], upstream: tuple[str, int]) -> None:
    server = await asyncio.start_server(connection_handler(*upstream), *listen)
    port = server.sockets[0].getsockname()[1]
    print(f"{READY_LINE} {listen[0]}:{port}, broker {upstream[0]}:{upstream[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_eng5.stack.kafka_adapter")
    parser.add_argument("--listen", type=_host_port, required=True)
    parser.add_argument("--upstream", type=_host_port, required=True)
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args.listen, args.upstream))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"kafka adapter could not listen on {args.listen}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
