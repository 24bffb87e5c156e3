"""The reference services serve on sockets the stack bound to port 0 (no port picked, released
and bound again by the child later)."""

from __future__ import annotations

import re
import select
import socket
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest


def test_each_service_serves_on_the_socket_it_was_handed(eng5_stack: Any) -> None:
    services = eng5_stack.services
    if services is None:
        pytest.skip("needs the reference services")
    for process in services.processes:
        assert "--port" not in process.argv
        assert "--health-port" not in process.argv
        assert "--fd" in process.argv or "--health-fd" in process.argv
    for url in (f"{services.cj_url}/healthz", services.worker_health_url):
        assert httpx.get(url, timeout=5).status_code == 200
    content = urlsplit(services.content_url)
    assert httpx.get(f"{content.scheme}://{content.netloc}/healthz", timeout=5).status_code == 200


def _idle_after_one_request(url: str) -> socket.socket:
    """A connection that has had one keep-alive request answered and now sits idle."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=5)
    sock.sendall(f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        assert chunk, f"{url} closed the connection before answering"
        head += chunk
    header, _, body = head.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: *(\d+)", header).group(1))  # type: ignore[union-attr]
    while len(body) < length:
        body += sock.recv(4096)
    return sock


def test_services_keep_idle_connections_open_longer_than_an_httpx_pool(eng5_stack: Any) -> None:
    """uvicorn's default keep-alive (5 s) equals httpx's pool expiry: a client could reuse a
    connection as the server closed it, and under load CJ lost essay fetches that way."""
    services = eng5_stack.services
    if services is None:
        pytest.skip("needs the reference services")
    content = urlsplit(services.content_url)
    urls = [
        f"{content.scheme}://{content.netloc}/healthz",
        f"{services.cj_url}/healthz",
        services.worker_health_url,
    ]
    sockets = [_idle_after_one_request(url) for url in urls]
    try:
        pool_expiry = httpx.Limits().keepalive_expiry or 0.0
        # A server closing an idle connection makes its socket readable (EOF).
        closed, _, _ = select.select(sockets, [], [], pool_expiry + 1.0)
        assert [urls[sockets.index(sock)] for sock in closed] == []
    finally:
        for sock in sockets:
            sock.close()
