"""Round-trip cost of the Kafka-protocol adapter in front of Tansu (not a test).

Run ``python bench/bench_kafka_adapter.py [--requests 2000 --block 200]``. Starts the embedded
broker behind its adapter and sends ApiVersions v0 requests one at a time over one connection
straight to Tansu's own port and over one through the adapter, alternating blocks of
``--block`` requests so both see the same machine load. Reports the median and p95 round trip
of each path and their difference: what the adapter adds to every Kafka request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import struct
import tempfile
import time
from pathlib import Path
from typing import Any

from pytest_eng5.stack.config import StackConfig
from pytest_eng5.stack.tansu import start_tansu

API_VERSIONS_V0 = struct.pack(">hhih", 18, 0, 1, 5) + b"bench"


async def round_trips(host: str, port: int, count: int) -> list[float]:
    reader, writer = await asyncio.open_connection(host, port)
    frame = struct.pack(">i", len(API_VERSIONS_V0)) + API_VERSIONS_V0
    timings: list[float] = []
    try:
        for _ in range(count):
            started = time.perf_counter()
            writer.write(frame)
            await writer.drain()
            (size,) = struct.unpack(">i", await reader.readexactly(4))
            await reader.readexactly(size)
            timings.append((time.perf_counter() - started) * 1000)
    finally:
        writer.close()
        await writer.wait_closed()
    return timings


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median_ms": round(statistics.median(ordered), 3),
        "p95_ms": round(ordered[int(len(ordered) * 0.95) - 1], 3),
    }


async def measure(broker: int, adapter: int, requests: int, block: int) -> dict[str, Any]:
    direct: list[float] = []
    relayed: list[float] = []
    for _ in range(max(requests // block, 1)):
        direct += await round_trips("127.0.0.1", broker, block)
        relayed += await round_trips("127.0.0.1", adapter, block)
    result = {"direct": summary(direct), "via_adapter": summary(relayed)}
    result["added_median_ms"] = round(
        result["via_adapter"]["median_ms"] - result["direct"]["median_ms"], 3
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--block", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        endpoint, kafka = start_tansu(StackConfig("embedded", Path(tmp), Path(tmp) / "logs"))
        try:
            listener = kafka.broker.argv[kafka.broker.argv.index("--listener-url") + 1]
            broker_port = int(listener.rpartition(":")[2])
            adapter_port = int(endpoint.bootstrap.rpartition(":")[2])
            report = asyncio.run(measure(broker_port, adapter_port, args.requests, args.block))
        finally:
            kafka.stop()
    report["requests_per_path"] = args.requests
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
