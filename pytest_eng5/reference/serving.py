"""How the reference services serve HTTP: the uvicorn settings every service shares."""

from __future__ import annotations

from typing import Any, Final

import uvicorn

#: Seconds an idle keep-alive connection stays open on the server. uvicorn's own default
#: (5 s) equals the expiry of httpx's client pool, so a client could reuse a connection just
#: as the server closed it: under load the CJ worker then lost essay fetches ("Server
#: disconnected") and CJ dropped those essays. The server must outlive every client's pool;
#: 75 s is aiohttp's default, which HuleEdu's services keep.
KEEP_ALIVE_S: Final = 75


def uvicorn_config(app: Any, *, host: str, port: int, **options: Any) -> uvicorn.Config:
    """A uvicorn configuration for ``app`` with the shared keep-alive."""
    return uvicorn.Config(app, host=host, port=port, timeout_keep_alive=KEEP_ALIVE_S, **options)
