"""The reference services serve on sockets the stack bound to port 0 (no port picked, released
and bound again by the child later)."""

from __future__ import annotations

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
