"""zcopy.aio.sock_sendfile on the default asyncio loop and on uvloop."""

from __future__ import annotations

import asyncio
import io
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zcopy.aio
from conftest import LIMIT, data_of

LOOPS = ["asyncio", "uvloop"]


def run(loop_kind: str, coro_fn: Callable[[], Any]) -> Any:
    if loop_kind == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(asyncio.wait_for(coro_fn(), LIMIT))
    finally:
        loop.close()


async def connected_pair() -> tuple[socket.socket, socket.socket]:
    loop = asyncio.get_running_loop()
    with socket.create_server(("127.0.0.1", 0)) as srv:
        srv.setblocking(False)
        c = socket.socket()
        c.setblocking(False)
        await loop.sock_connect(c, srv.getsockname())
        s, _ = await loop.sock_accept(srv)
    s.setblocking(False)
    return c, s


async def receive_all(sock: socket.socket) -> bytes:
    loop = asyncio.get_running_loop()
    chunks = []
    while True:
        b = await loop.sock_recv(sock, 1 << 20)
        if not b:
            return b"".join(chunks)
        chunks.append(b)


@pytest.mark.parametrize("loop_kind", LOOPS)
@pytest.mark.parametrize("offset,count", [(0, None), (1000, None), (7, 100_000), (0, 1)])
def test_sock_sendfile(loop_kind: str, offset: int, count: int | None, tmp_path: Path) -> None:
    data = data_of(3 << 20, seed=offset)
    path = tmp_path / "data"
    path.write_bytes(data)

    async def main() -> None:
        c, s = await connected_pair()
        with c, s, open(path, "rb") as f:
            recv = asyncio.ensure_future(receive_all(s))
            sent = await zcopy.aio.sock_sendfile(c, f, offset, count)
            c.shutdown(socket.SHUT_WR)
            got = await recv
            end = None if count is None else offset + count
            assert sent == len(data[offset:end])
            assert got == data[offset:end]
            assert f.tell() == offset + sent

    run(loop_kind, main)


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_hundred_concurrent_transfers(loop_kind: str, tmp_path: Path) -> None:
    files = []
    for i in range(100):
        p = tmp_path / f"f{i}"
        p.write_bytes(data_of(64 * 1024 + i * 997, seed=i))
        files.append(p)

    async def one(i: int) -> None:
        c, s = await connected_pair()
        with c, s, open(files[i], "rb") as f:
            recv = asyncio.ensure_future(receive_all(s))
            sent = await zcopy.aio.sock_sendfile(c, f)
            c.shutdown(socket.SHUT_WR)
            assert await recv == files[i].read_bytes()
            assert sent == files[i].stat().st_size

    async def main() -> None:
        # A heartbeat shows the loop keeps running while the transfers wait.
        beats = 0

        async def heartbeat() -> None:
            nonlocal beats
            while True:
                beats += 1
                await asyncio.sleep(0.001)

        hb = asyncio.ensure_future(heartbeat())
        await asyncio.gather(*(one(i) for i in range(100)))
        hb.cancel()
        assert beats > 0

    run(loop_kind, main)


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_does_not_block_loop_on_stalled_peer_and_cancel_keeps_position(loop_kind: str, tmp_path: Path) -> None:
    data = data_of(32 << 20, seed=5)
    path = tmp_path / "data"
    path.write_bytes(data)

    async def main() -> None:
        c, s = await connected_pair()
        with c, s, open(path, "rb") as f:
            task = asyncio.ensure_future(zcopy.aio.sock_sendfile(c, f, 100))
            # The peer does not read: the transfer must wait without blocking the loop.
            for _ in range(20):
                await asyncio.sleep(0.01)
            assert not task.done()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            pos = f.tell()
            assert pos > 100  # offset + what was sent so far
            # Resume from the position: the peer gets every byte exactly once.
            recv = asyncio.ensure_future(receive_all(s))
            rest = await zcopy.aio.sock_sendfile(c, f, pos)
            c.shutdown(socket.SHUT_WR)
            got = await recv
            assert pos + rest == len(data)
            assert got == data[100:]

    run(loop_kind, main)


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_blocking_socket_and_bad_params(loop_kind: str, tmp_path: Path) -> None:
    path = tmp_path / "data"
    path.write_bytes(b"abc")

    async def main() -> None:
        with socket.socket() as blocking, open(path, "rb") as f:
            with pytest.raises(ValueError, match="non-blocking"):
                await zcopy.aio.sock_sendfile(blocking, f)
        c, s = await connected_pair()
        with c, s, open(path, "rb") as f:
            for kwargs, exc in [
                ({"count": 0}, ValueError),
                ({"count": 1.5}, TypeError),
                ({"offset": -1}, ValueError),
                ({"offset": "1"}, TypeError),
            ]:
                with pytest.raises(exc):
                    await zcopy.aio.sock_sendfile(c, f, **kwargs)
        with c, open(path, "r") as text:
            with pytest.raises(ValueError, match="binary mode"):
                await zcopy.aio.sock_sendfile(c, text)  # type: ignore[arg-type]

    run(loop_kind, main)


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_fallback_without_fd(loop_kind: str) -> None:
    data = data_of(700_000, seed=2)

    async def main() -> None:
        c, s = await connected_pair()
        with c, s:
            f = io.BytesIO(data)
            recv = asyncio.ensure_future(receive_all(s))
            sent = await zcopy.aio.sock_sendfile(c, f, 5, 600_000)
            c.shutdown(socket.SHUT_WR)
            assert sent == 600_000
            assert await recv == data[5:600_005]
            assert f.tell() == 600_005

    run(loop_kind, main)


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_empty_file(loop_kind: str, tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")

    async def main() -> None:
        c, s = await connected_pair()
        with c, s, open(path, "rb") as f:
            assert await zcopy.aio.sock_sendfile(c, f) == 0
            assert f.tell() == 0

    run(loop_kind, main)
    assert os.path.getsize(path) == 0
