"""Command line of the reference CJ worker, with its ``/healthz`` endpoint.

``python -m pytest_eng5.reference cj-worker --bootstrap HOST:PORT --dsn DSN --content-url URL
--health-port N | --health-fd FD [--judge text_features|coin_flip|llm_http] [--judge-seed 0]
[--max-pairwise-comparisons 120] [--idempotent-producer] [--callback-timeout-s 10]
[--pair-seed 0] [--log-level INFO]``

``GET http://127.0.0.1:N/healthz`` answers 503 until the database pool is open and the Kafka
positions are set at the end of the request and callback topics, then 200. SIGTERM or SIGINT
stops the worker cleanly (exit code 0).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Iterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pytest_eng5.core.names import DEFAULT_JUDGE, JUDGE_NAMES, MAX_PAIRWISE_COMPARISONS
from pytest_eng5.core.process import REFERENCE_DSN_ENV
from pytest_eng5.errors import Eng5Error
from pytest_eng5.redact import RedactingFilter, register_secret
from pytest_eng5.reference.serving import uvicorn_config
from pytest_eng5.reference.worker import CJWorker
from pytest_eng5.reference.worker_settings import WorkerSettings

_log = logging.getLogger("pytest_eng5.reference.worker_main")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_eng5.reference cj-worker",
        description="Reference CJ worker: HuleEdu's CJ Kafka flow plus the LLM Provider's judge.",
    )
    parser.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers HOST:PORT")
    parser.add_argument(
        "--dsn",
        default=os.environ.get(REFERENCE_DSN_ENV),
        help=f"PostgreSQL DSN of the reference database (default: env {REFERENCE_DSN_ENV})",
    )
    parser.add_argument(
        "--content-url", required=True, help="Content Service base, e.g. http://h:p/v1/content"
    )
    health = parser.add_mutually_exclusive_group(required=True)
    health.add_argument("--health-port", type=int, help="port of GET /healthz on 127.0.0.1")
    health.add_argument("--health-fd", type=int, help="inherited listening socket for /healthz")
    parser.add_argument("--judge", default=DEFAULT_JUDGE, choices=JUDGE_NAMES)
    parser.add_argument("--judge-seed", default=0, type=int)
    parser.add_argument("--max-pairwise-comparisons", default=MAX_PAIRWISE_COMPARISONS, type=int)
    parser.add_argument(
        "--idempotent-producer",
        action="store_true",
        help="enable the idempotent Kafka producer (the stack passes it unless idempotence is off)",
    )
    parser.add_argument(
        "--callback-timeout-s",
        default=10.0,
        type=float,
        help="a wave's missing callbacks count as failed after this many idle seconds",
    )
    parser.add_argument("--pair-seed", default=0, type=int, help="seed of the pair planner")
    parser.add_argument("--log-level", default="INFO")
    return parser


def settings_from_args(args: argparse.Namespace) -> WorkerSettings:
    return WorkerSettings(
        bootstrap_servers=args.bootstrap,
        dsn=args.dsn,
        content_url=args.content_url,
        judge_name=args.judge,
        judge_seed=args.judge_seed,
        max_pairwise_comparisons=args.max_pairwise_comparisons,
        idempotent_producer=args.idempotent_producer,
        callback_timeout_s=args.callback_timeout_s,
        pair_generation_seed=args.pair_seed,
    )


def create_health_app(worker: CJWorker) -> Starlette:
    """``GET /healthz``: 200 when the worker is ready, else 503."""

    async def healthz(request: Request) -> JSONResponse:
        if worker.ready:
            return JSONResponse({"status": "ok", "service": "cj-worker"})
        return JSONResponse({"status": "starting", "service": "cj-worker"}, status_code=503)

    return Starlette(routes=[Route("/healthz", healthz)])


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling; :func:`_serve` owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _serve(settings: WorkerSettings, health_port: int | None, health_fd: int | None) -> int:
    worker = CJWorker(settings)
    config = uvicorn_config(
        create_health_app(worker),
        host="127.0.0.1",
        port=health_port or 0,
        log_level="warning",
        lifespan="off",
    )
    server = _QuietServer(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    # with --health-fd the parent bound the port; the socket's family is read from the fd
    sockets = None if health_fd is None else [socket.socket(fileno=health_fd)]
    server_task = asyncio.create_task(server.serve(sockets=sockets))
    exit_code = 0

    async def run_worker() -> None:
        await worker.start()
        await worker.run()

    worker_task = asyncio.create_task(run_worker())
    stop_task = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait(
        {worker_task, server_task, stop_task}, return_when=asyncio.FIRST_COMPLETED
    )
    if worker_task in done and worker_task.exception() is not None:
        error = worker_task.exception()
        _log.error("cj-worker stopped: %s", error)
        print(f"cj-worker: {error}", file=sys.stderr)
        exit_code = 1
    elif server_task in done and not stop.is_set():
        _log.error("health server on 127.0.0.1:%s stopped (port in use?)", health_port)
        print(f"cj-worker: health server on port {health_port} could not run", file=sys.stderr)
        exit_code = 1
    worker_task.cancel()
    await asyncio.gather(worker_task, return_exceptions=True)
    await worker.stop()
    server.should_exit = True
    await asyncio.gather(server_task, return_exceptions=True)
    stop_task.cancel()
    return exit_code


def main(argv: list[str] | None = None) -> int:
    """Run the worker until SIGTERM/SIGINT; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.dsn:
        parser.error(f"--dsn or env {REFERENCE_DSN_ENV} is required")
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, str(args.log_level).upper(), logging.INFO))
    register_secret(args.dsn)  # may carry a password
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    try:
        settings = settings_from_args(args)
        return asyncio.run(_serve(settings, args.health_port, args.health_fd))
    except Eng5Error as error:
        print(f"cj-worker: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
