"""The reference services as separate processes (so faults and crashes stay realistic).

Each is started with ``python -m pytest_eng5.reference <service>`` and is ready when its
``/healthz`` answers 200. Each serves on a socket this process bound to port 0 and hands down
by file descriptor (``--fd``), so every port is known before the children start and none is
released in between. Secrets go through the environment, never the command line (the
command line is written to the service log).
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx

from pytest_eng5.core.names import DEFAULT_JUDGE, MAX_PAIRWISE_COMPARISONS
from pytest_eng5.core.process import REFERENCE_DSN_ENV, REFERENCE_FAULTS_DSN_ENV
from pytest_eng5.stack.kafka import KafkaEndpoint
from pytest_eng5.stack.ports import listening_socket
from pytest_eng5.stack.process import ManagedProcess

HOST = "127.0.0.1"
#: The worker's wave timeout on an Apache Kafka cluster. When a node crashes, every acks=all
#: produce waits until the node leaves the in-sync replicas (it is fenced after
#: ``broker.session.timeout.ms``) and its partitions have new leaders: 5-10 s without any
#: callback on three nodes, as long as the default 10 s timeout.
CLUSTER_WAVE_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class ReferenceServices:
    """Where the reference services answer, and their processes."""

    content_url: str
    cj_url: str
    worker_health_url: str
    processes: tuple[ManagedProcess, ...]

    def stop(self, timeout: float = 10.0) -> None:
        """Stop all services at once (each shuts down on its own; none needs another)."""
        with ThreadPoolExecutor(max_workers=len(self.processes) or 1) as pool:
            for stopping in [pool.submit(p.stop, timeout) for p in self.processes]:
                stopping.result()


def _healthz(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def _launch(
    name: str, args: list[str], log_dir: Path, env: dict[str, str], fd: int
) -> ManagedProcess:
    return ManagedProcess(
        name,
        [sys.executable, "-m", "pytest_eng5.reference", *args],
        log_dir,
        env=env,
        pass_fds=(fd,),
    )


def start_reference_services(
    *,
    kafka: KafkaEndpoint,
    postgres_dsn: str,
    jwt_secret: str,
    content_dsn: str | None = None,
    log_dir: Path,
    timeout: float,
    judge: str = DEFAULT_JUDGE,
    judge_seed: int = 0,
    max_pairwise_comparisons: int = MAX_PAIRWISE_COMPARISONS,
) -> ReferenceServices:
    """Start Content Service, CJ API and CJ worker; stop what started if one fails."""
    env = {
        **os.environ,
        "JWT_SECRET_KEY": jwt_secret,
        REFERENCE_DSN_ENV: postgres_dsn,
        "PYTHONUNBUFFERED": "1",
    }
    # The Content Service keeps its blobs in its own database when there is one, and its
    # fault knobs with everyone else's in the CJ database.
    content_env = (
        {**env, REFERENCE_DSN_ENV: content_dsn, REFERENCE_FAULTS_DSN_ENV: postgres_dsn}
        if content_dsn
        else env
    )
    sockets = {name: listening_socket(HOST) for name in ("content-service", "cj-api", "cj-worker")}
    content_port, cj_port, worker_port = (s.getsockname()[1] for s in sockets.values())
    content_base = f"http://{HOST}:{content_port}"
    content_url = f"{content_base}/v1/content"
    cj_url = f"http://{HOST}:{cj_port}"
    worker_health = f"http://{HOST}:{worker_port}/healthz"
    worker_args = [
        "cj-worker",
        "--bootstrap",
        kafka.bootstrap,
        "--content-url",
        content_url,
        "--health-fd",
        str(sockets["cj-worker"].fileno()),
        "--judge",
        judge,
        "--judge-seed",
        str(judge_seed),
        "--max-pairwise-comparisons",
        str(max_pairwise_comparisons),
    ]
    if kafka.idempotence:
        worker_args.append("--idempotent-producer")
    if kafka.provider == "apache":
        worker_args += ["--callback-timeout-s", str(CLUSTER_WAVE_TIMEOUT_S)]
    plan = [
        (
            "content-service",
            ["content", "--fd", str(sockets["content-service"].fileno())],
            f"{content_base}/healthz",
        ),
        (
            "cj-api",
            [
                "cj-api",
                "--fd",
                str(sockets["cj-api"].fileno()),
                "--content-url",
                content_url,
            ],
            f"{cj_url}/healthz",
        ),
        ("cj-worker", worker_args, worker_health),
    ]
    # All three start at once (each pays its own interpreter start-up), then each must
    # answer /healthz; the first that dies or times out stops them all.
    started: list[ManagedProcess] = []
    try:
        for name, args, _ in plan:
            service_env = content_env if name == "content-service" else env
            started.append(_launch(name, args, log_dir, service_env, sockets[name].fileno()))
        for process, (name, _, health_url) in zip(started, plan, strict=True):
            process.wait_ready(
                lambda url=health_url: _healthz(url),  # type: ignore[misc]
                timeout,
                what=f"{name} /healthz",
                next_step=f"read {process.log_path}",
            )
    except BaseException:
        for process in reversed(started):
            process.stop()
        raise
    finally:
        for sock in sockets.values():  # the children hold their own copies
            sock.close()
    return ReferenceServices(content_url, cj_url, worker_health, tuple(started))
