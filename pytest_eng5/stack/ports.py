"""TCP ports on 127.0.0.1 for the embedded services."""

from __future__ import annotations

import socket

from pytest_eng5.errors import ConfigurationError

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """Return a port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def listening_socket(host: str = LOOPBACK) -> socket.socket:
    """A socket bound to port 0 on ``host`` and listening: the OS picks the port, and it stays
    taken. A child serves on it when given its file descriptor (``--fd``), so no port is picked,
    released and bound again later."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((host, 0))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def port_is_free(port: int) -> bool:
    """True when a server could bind and listen on ``127.0.0.1:port`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Servers set SO_REUSEADDR, so a port in TIME_WAIT is free for them too.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
            sock.listen(1)
        except OSError:
            return False
        return True


def require_free_port(port: int, what: str) -> int:
    """Return ``port`` if it is free, else raise a :class:`ConfigurationError` naming it."""
    if not port_is_free(port):
        raise ConfigurationError(
            f"port {port} on {LOOPBACK} for {what} is already in use",
            next_step=f"stop whatever listens on port {port}, or leave the port unset so a "
            "free one is picked",
        )
    return port
