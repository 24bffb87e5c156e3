"""The Apache Kafka broker's jars: resolved once per version with Maven, then cached.

``mvn dependency:copy-dependencies`` runs on a small generated pom that names
``org.apache.kafka:kafka_2.13:<version>`` (plus an SLF4J binding, so the broker logs to its
stdout). The jars land in ``<user cache>/pytest-eng5/apache-kafka/<version>/libs``; a file
lock makes parallel sessions (xdist workers) resolve once, and a ``complete`` marker written
last means a resolve that broke off is redone instead of used half-finished.

Without ``java`` or ``mvn`` on ``PATH`` the provider is unavailable
(:class:`ApacheKafkaUnavailable`), which a session turns into a skip unless
``--eng5-require-services`` is set.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from pathlib import Path

from pytest_eng5.stack.process import ManagedProcess
from pytest_eng5.stack.readiness import StackStartError, tail_log

DEFAULT_KAFKA_VERSION = "4.4.0"
SCALA_VERSION = "2.13"
SLF4J_VERSION = "2.0.17"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
#: A cold ~/.m2 downloads the plugin and about 45 MB of jars; a warm one takes seconds.
MAVEN_TIMEOUT = 600.0
_VERSION_PATTERN = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
_COMPLETE_MARKER = "complete"

POM_TEMPLATE = """<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>pytest-eng5</groupId>
  <artifactId>apache-kafka-broker-jars</artifactId>
  <version>{kafka}</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_{scala}</artifactId>
      <version>{kafka}</version>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-api</artifactId>
      <version>{slf4j}</version>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-simple</artifactId>
      <version>{slf4j}</version>
    </dependency>
  </dependencies>
</project>
"""


class ApacheKafkaUnavailable(StackStartError):
    """The Apache Kafka provider cannot run here (no ``java`` or no ``mvn``): skip, not fail."""

    kind = "stack-unavailable"


def check_version(version: str) -> str:
    """``version`` if it is a plain 4.x release number (KRaft only), else a StackStartError."""
    match = _VERSION_PATTERN.match(version)
    if match is None or int(match.group(1)) < 4:
        raise StackStartError(
            f"Apache Kafka version {version!r} is not a 4.x release number",
            next_step=f"give --eng5-kafka-version a 4.x version such as {DEFAULT_KAFKA_VERSION}",
        )
    return version


def require_tool(name: str) -> str:
    """The path of ``name`` on PATH, or :class:`ApacheKafkaUnavailable` naming it."""
    found = shutil.which(name)
    if found is None:
        raise ApacheKafkaUnavailable(
            f"the Apache Kafka provider needs {name!r} on PATH, and there is none",
            next_step=f"install {'a Java 17+ runtime' if name == 'java' else 'Maven'}, or use "
            "--eng5-kafka=tansu",
        )
    return found


def cache_root() -> Path:
    """``<user cache dir>/pytest-eng5/apache-kafka`` (``ENG5_CACHE_DIR`` overrides the base)."""
    import platformdirs

    base = os.environ.get("ENG5_CACHE_DIR") or platformdirs.user_cache_dir("pytest-eng5")
    return Path(base) / "apache-kafka"


def broker_jars(version: str, log_dir: Path, *, timeout: float = MAVEN_TIMEOUT) -> Path:
    """The folder holding every jar of the broker ``version``; resolves it first if needed."""
    from filelock import FileLock, Timeout

    check_version(version)
    target = cache_root() / version
    if _is_complete(target):
        return target / "libs"
    mvn = require_tool("mvn")
    target.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        with FileLock(str(target.parent / f"{version}.lock"), timeout=timeout):
            if not _is_complete(target):
                remaining = max(timeout - (time.monotonic() - started), 1.0)
                _resolve(mvn, version, target, log_dir, remaining)
    except Timeout as exc:
        raise StackStartError(
            f"another process held the lock on {target} for more than {timeout:.0f} s "
            "(it is resolving the Kafka jars)",
            next_step="wait for the other session, or remove the lock file if none runs",
        ) from exc
    return target / "libs"


def _is_complete(target: Path) -> bool:
    return (target / _COMPLETE_MARKER).is_file() and (target / "libs").is_dir()


def _resolve(mvn: str, version: str, target: Path, log_dir: Path, timeout: float) -> None:
    staging = Path(tempfile.mkdtemp(prefix=f"{version}-", dir=target.parent))
    try:
        (staging / "pom.xml").write_text(
            POM_TEMPLATE.format(kafka=version, scala=SCALA_VERSION, slf4j=SLF4J_VERSION)
        )
        argv = [
            mvn,
            "--batch-mode",
            "--no-transfer-progress",
            "-f",
            str(staging / "pom.xml"),
            f"{DEPENDENCY_PLUGIN}:copy-dependencies",
            f"-DoutputDirectory={staging / 'libs'}",
            "-DincludeScope=runtime",
        ]
        maven = ManagedProcess("maven-resolve", argv, log_dir, cwd=staging)
        try:
            death = maven.wait_for_exit(timeout)
        finally:
            maven.stop(timeout=5)
        if death is None:
            raise StackStartError(
                f"Maven did not resolve Apache Kafka {version} within {timeout:.0f} s"
                + _maven_problem(maven),
                next_step=f"read {maven.log_path}; check that Maven Central answers "
                "(mvn -v, ~/.m2/settings.xml) and run again (finished downloads are kept)",
            )
        jars = sorted((staging / "libs").glob("*.jar")) if (staging / "libs").is_dir() else []
        if maven.returncode != 0 or not any(j.name.startswith("kafka_") for j in jars):
            raise StackStartError(
                f"Maven could not resolve org.apache.kafka:kafka_{SCALA_VERSION}:{version} "
                f"({death})" + _maven_problem(maven),
                next_step=f"read {maven.log_path}; check the version is served by Maven Central "
                "and that Maven reaches it",
            )
        if target.exists():
            shutil.rmtree(target)
        (staging / _COMPLETE_MARKER).write_text("\n".join(j.name for j in jars) + "\n")
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _maven_problem(maven: ManagedProcess) -> str:
    errors = [
        line
        for line in tail_log(maven.log_path, 200, maven.log_offset).splitlines()
        if "[ERROR]" in line
    ][:5]
    if not errors:
        return ""
    return "\n  Maven reported:\n" + "\n".join(f"    {line.strip()}" for line in errors)
