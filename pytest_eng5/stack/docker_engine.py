"""Docker engine detection and the handle for containers started through testcontainers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_eng5.stack.cleanup import register_for_cleanup, unregister_for_cleanup


def docker_engine_available(timeout: float = 2.0) -> tuple[bool, str]:
    """Ping the Docker engine within ``timeout`` s; ``(False, "no Docker engine: …")`` if not."""
    try:
        import docker  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        return False, "no Docker engine: the docker package is not installed"
    client = None
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except Exception as exc:
        detail = str(exc).strip() or type(exc).__name__
        return False, f"no Docker engine: {detail}"
    finally:
        if client is not None:
            client.close()
    return True, "Docker engine answered a ping"


class ContainerHandle:
    """A started testcontainers container; ``stop()`` saves its log, then removes it."""

    def __init__(self, name: str, container: Any, log_dir: Path) -> None:
        self._name = name
        self._container = container
        self.log_path = log_dir / f"{name}.log"
        self._stopped = False
        register_for_cleanup(self)

    @property
    def name(self) -> str:
        return self._name

    @property
    def pid(self) -> int | None:
        return None

    def is_running(self) -> bool:
        """True while the engine reports the container running."""
        if self._stopped:
            return False
        try:
            wrapped = self._container.get_wrapped_container()
            wrapped.reload()
            return bool(wrapped.status == "running")
        except Exception:
            return False

    def save_log(self) -> None:
        try:
            stdout, stderr = self._container.get_logs()
        except Exception:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path.write_bytes(stdout + stderr)

    def stop(self, timeout: float = 10.0) -> None:
        if self._stopped:
            return
        self._stopped = True
        try:
            self.save_log()
            self._container.stop()
        finally:
            unregister_for_cleanup(self)
