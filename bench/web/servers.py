#!/usr/bin/env python3
"""The servers bench/web measures, all serving files from $ZC_BENCH_DIR at /file/NAME.

- ``starlette_app``: Starlette ``FileResponse``, served by uvicorn (stock or zcopy.uvicorn) and
  by granian.
- ``python servers.py aiohttp FD LOOP``: aiohttp ``web.FileResponse`` on LOOP = ``uvloop`` (stock),
  ``zcopy`` (zcopy.uvloop) or ``asyncio``.
- ``python servers.py bare FD``: the limit: a bare asyncio server answering each request with
  its headers and then ``loop.sock_sendfile`` (os.sendfile on the asyncio loop), keep-alive.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

DIR = Path(os.environ.get("ZC_BENCH_DIR", "/nonexistent"))


def _starlette():  # type: ignore[no-untyped-def]
    from starlette.applications import Starlette
    from starlette.responses import FileResponse
    from starlette.routing import Route

    async def file(request):  # type: ignore[no-untyped-def]
        return FileResponse(DIR / request.path_params["name"])

    return Starlette(routes=[Route("/file/{name}", file)])


starlette_app = _starlette() if __name__ != "__main__" else None


def aiohttp_server(fd: int, loop_kind: str) -> None:
    from aiohttp import web

    async def file(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(DIR / request.match_info["name"])

    app = web.Application()
    app.router.add_get("/file/{name}", file)
    if loop_kind == "zcopy":
        import zcopy.aio

        loop = zcopy.aio.new_event_loop()
    elif loop_kind == "uvloop":
        import uvloop

        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    web.run_app(app, sock=socket.socket(fileno=fd), loop=loop, print=None, access_log=None)


async def _bare_conn(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
    buf = b""
    with sock:
        while True:
            while b"\r\n\r\n" not in buf:
                data = await loop.sock_recv(sock, 65536)
                if not data:
                    return
                buf += data
            head, _, buf = buf.partition(b"\r\n\r\n")
            name = head.split(b" ", 2)[1].decode().rsplit("/", 1)[1]
            with open(DIR / name, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                await loop.sock_sendall(sock, b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % size)
                await loop.sock_sendfile(sock, f)


async def bare_server(fd: int) -> None:
    loop = asyncio.get_running_loop()
    srv = socket.socket(fileno=fd)
    srv.setblocking(False)
    tasks = set()
    while True:
        sock, _ = await loop.sock_accept(srv)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        t = loop.create_task(_bare_conn(loop, sock))
        tasks.add(t)
        t.add_done_callback(tasks.discard)


if __name__ == "__main__":
    if sys.argv[1] == "aiohttp":
        aiohttp_server(int(sys.argv[2]), sys.argv[3])
    elif sys.argv[1] == "bare":
        asyncio.run(bare_server(int(sys.argv[2])))
