"""The reference CJ worker: HuleEdu's CJ Assessment Service Kafka flow plus the LLM Provider.

This module owns the connections and the consumer loop; :class:`~.batch_flow.BatchFlow`
decides what each request, callback and idle wave leads to (contract §E, §F.2).

A difference from HuleEdu, on purpose: no consumer group. All partitions of the request and
callback topics are assigned and seeked to their end before the worker reports ready, so
"ready" means "a request published now will be seen" (HuleEdu's group join takes 5–25 s on
Tansu, during which requests are lost).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from pytest_eng5.contracts.topics import CALLBACK_TOPIC, REQUEST_TOPIC
from pytest_eng5.core.kafka_metadata import topic_partitions
from pytest_eng5.reference.batch_flow import BatchFlow
from pytest_eng5.reference.db import Pool, apply_schema, create_pool
from pytest_eng5.reference.judge import Judge, make_judge
from pytest_eng5.reference.outbox import relay_pending
from pytest_eng5.reference.worker_settings import WorkerSettings

_log = logging.getLogger(__name__)

OUTBOX_RETRY_INTERVAL_S: Final = 2.0
"""How often outbox rows that could not be published (Kafka hiccup) are relayed again."""


class CJWorker:
    """One reference CJ worker; use ``async with CJWorker(settings) as worker`` or
    :meth:`start` / :meth:`run` / :meth:`stop`."""

    def __init__(self, settings: WorkerSettings, *, judge: Judge | None = None) -> None:
        self.settings = settings
        self._judge = judge or make_judge(settings.judge_name, settings.judge_seed)
        self._pool: Pool | None = None
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._http: httpx.AsyncClient | None = None
        self._flow: BatchFlow | None = None
        self._ready = asyncio.Event()
        self._stopping = asyncio.Event()
        self._run_task: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        """True once the pool is open and the Kafka positions are set."""
        return self._ready.is_set()

    async def wait_ready(self, timeout_s: float) -> None:
        """Wait until :attr:`ready`; raises TimeoutError after ``timeout_s``."""
        await asyncio.wait_for(self._ready.wait(), timeout_s)

    @property
    def pool(self) -> Pool:
        """The worker's connection pool (only while started)."""
        if self._pool is None:
            raise RuntimeError("the worker is not started")
        return self._pool

    async def start(self) -> None:
        """Open the pool, producer and consumer; return once positions are at the topic ends."""
        s = self.settings
        self._pool = await create_pool(s.dsn, min_size=1, max_size=8)
        await apply_schema(self._pool)
        self._http = httpx.AsyncClient(timeout=s.http_timeout_s)
        self._producer = AIOKafkaProducer(
            bootstrap_servers=s.bootstrap_servers,
            client_id=s.client_id,
            acks="all",
            enable_idempotence=s.idempotent_producer,
            linger_ms=0,
        )
        await self._producer.start()
        self._flow = BatchFlow(self._pool, self._producer, self._http, self._judge, s)
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=s.bootstrap_servers,
            client_id=s.client_id,
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=s.fetch_max_wait_ms,
        )
        await self._consumer.start()
        # the stack creates the contract topics; the worker only waits for them
        partitions = await topic_partitions(
            self._consumer, (REQUEST_TOPIC, CALLBACK_TOPIC), within=10.0
        )
        self._consumer.assign(partitions)
        await self._consumer.seek_to_end(*partitions)
        for partition in partitions:  # resolves the lazy seek: positions are now fixed
            await self._consumer.position(partition)
        await relay_pending(self._pool, self._flow.send)
        self._ready.set()
        _log.info("reference CJ worker ready on %d partitions", len(partitions))

    async def run(self) -> None:
        """Consume until :meth:`stop`; each message is handled to the end before the next."""
        if self._consumer is None or self._flow is None:
            raise RuntimeError("call start() before run()")
        consumer, flow = self._consumer, self._flow
        loop = asyncio.get_running_loop()
        next_relay = loop.time() + OUTBOX_RETRY_INTERVAL_S
        while not self._stopping.is_set():
            batches = await consumer.getmany(timeout_ms=100)
            for records in batches.values():
                for record in records:
                    await flow.handle(record.topic, record.value)
            if loop.time() >= next_relay:
                await flow.relay_unpublished()
                next_relay = loop.time() + OUTBOX_RETRY_INTERVAL_S

    async def stop(self) -> None:
        """Stop consuming, cancel timers and in-flight comparisons, close connections."""
        self._stopping.set()
        if self._run_task is not None:
            self._run_task.cancel()
            await asyncio.gather(self._run_task, return_exceptions=True)
        if self._flow is not None:
            await self._flow.close()
        if self._consumer is not None:
            await self._consumer.stop()
        if self._producer is not None:
            await self._producer.stop()
        if self._http is not None:
            await self._http.aclose()
        if self._pool is not None:
            await self._pool.close()
        self._ready.clear()

    async def __aenter__(self) -> CJWorker:
        await self.start()
        self._run_task = asyncio.create_task(self.run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
