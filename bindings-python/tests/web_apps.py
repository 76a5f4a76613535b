"""The applications the web tests serve, in a server process of their own (see web_support.py).

Files come from the directory in $ZC_WEB_DIR. Every app has /stats: the engine's counters
(zcopy._transport.STATS), this process's open descriptors and resident memory, and whether the
request's scope offered pathsend, so the tests can see what the server did from outside.

Run as a script it serves aiohttp: ``python web_apps.py aiohttp FD LOOP [CERT KEY]`` with LOOP
``zcopy`` (zcopy.uvloop), ``uvloop`` (stock) or ``asyncio``, on the listening socket FD.
"""

from __future__ import annotations

import os
import socket
import ssl
import sys
from pathlib import Path
from typing import Any

from zcopy import _transport

DIR = Path(os.environ.get("ZC_WEB_DIR", "/nonexistent"))


def stats(extensions: object = None) -> dict[str, Any]:
    rss = 0
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
    return {
        **_transport.STATS,
        "fds": len(os.listdir("/proc/self/fd")),
        "rss": rss,
        "pathsend": isinstance(extensions, dict) and "http.response.pathsend" in extensions,
    }


# --- Starlette / FastAPI (served by uvicorn) ---------------------------------------------------
from starlette.applications import Starlette  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response  # noqa: E402
from starlette.routing import Route  # noqa: E402


async def _file(request: Request) -> Response:
    return FileResponse(DIR / request.path_params["name"])


async def _stats(request: Request) -> Response:
    return JSONResponse(stats(request.scope.get("extensions")))


async def _small(request: Request) -> Response:
    return PlainTextResponse("small")


async def _zerocopysend(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Raw ASGI: ?name=&offset=&count=&parts=&length= ; the body is ``parts`` zerocopysend
    messages splitting [offset, offset+count) (chunked unless ``length`` announces a
    Content-Length), then an empty final body."""
    q = dict(p.split("=", 1) for p in scope["query_string"].decode().split("&") if p)
    offset, count, parts = int(q["offset"]), int(q["count"]), int(q.get("parts", "1"))
    headers = [(b"content-type", b"application/octet-stream")]
    if "length" in q:
        headers.append((b"content-length", q["length"].encode()))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    with open(DIR / q["name"], "rb") as f:
        step = count // parts
        for i in range(parts):
            n = step if i < parts - 1 else count - step * (parts - 1)
            await send({"type": "http.response.zerocopysend", "file": f, "offset": offset, "count": n, "more_body": True})
            offset += n
    await send({"type": "http.response.body", "body": b"", "more_body": False})


_starlette = Starlette(
    routes=[
        Route("/file/{name}", _file, methods=["GET", "HEAD"]),
        Route("/stats", _stats),
        Route("/small", _small),
    ]
)


async def starlette_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http" and scope["path"] == "/zerocopysend":
        await _zerocopysend(scope, receive, send)
    else:
        await _starlette(scope, receive, send)


def _fastapi() -> Any:
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/file/{name}")
    async def file(name: str) -> FileResponse:
        return FileResponse(DIR / name)

    @app.get("/stats")
    async def get_stats(request: Request) -> dict[str, Any]:
        return stats(request.scope.get("extensions"))

    return app


fastapi_app = _fastapi()


# --- aiohttp ------------------------------------------------------------------------------------
def serve_aiohttp(fd: int, loop_kind: str, tls: tuple[str, str] | None) -> None:
    import asyncio

    from aiohttp import web

    async def file(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(DIR / request.match_info["name"])

    async def get_stats(request: web.Request) -> web.StreamResponse:
        return web.json_response(stats())

    async def small(request: web.Request) -> web.StreamResponse:
        return web.Response(text="small")

    app = web.Application()
    app.router.add_get("/file/{name}", file)  # GET routes answer HEAD too
    app.router.add_get("/stats", get_stats)
    app.router.add_get("/small", small)
    if loop_kind == "zcopy":
        import zcopy.aio

        loop = zcopy.aio.new_event_loop()
    elif loop_kind == "uvloop":
        import uvloop

        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    ctx = None
    if tls:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(*tls)
    sock = socket.socket(fileno=fd)
    web.run_app(app, sock=sock, loop=loop, ssl_context=ctx, print=None, access_log=None)


if __name__ == "__main__":
    if sys.argv[1] == "aiohttp":
        cert = (sys.argv[4], sys.argv[5]) if len(sys.argv) > 5 else None
        serve_aiohttp(int(sys.argv[2]), sys.argv[3], cert)
