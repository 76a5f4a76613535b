"""zcopy.uvloop.Loop.sendfile against asyncio's own loop.sendfile: same results, same errors.

Each scenario runs on a real transport (loop.create_connection over loopback TCP, or TLS) with a
blocking peer socket in a thread, on both loops; the peer gets every byte exactly once.
"""

from __future__ import annotations

import asyncio
import io
import socket
import ssl
import struct
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import LIMIT, Worker, data_of, tcp_pair
from web_support import make_cert

pytest.importorskip("uvloop")
import zcopy.uvloop  # noqa: E402
from zcopy import _transport  # noqa: E402

LOOPS = ["zcopy", "asyncio"]
DATA = data_of(3 << 20, seed=7)


@pytest.fixture
def src(tmp_path: Path) -> Iterator[io.BufferedReader]:
    p = tmp_path / "src.bin"
    p.write_bytes(DATA)
    with open(p, "rb") as f:
        yield f


class Recorder(asyncio.Protocol):
    def __init__(self) -> None:
        self.received = bytearray()
        self.lost: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self.received += data

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(exc)


def run(kind: str, body: Callable[[asyncio.AbstractEventLoop], Awaitable[Any]]) -> Any:
    loop = zcopy.uvloop.new_event_loop() if kind == "zcopy" else asyncio.new_event_loop()
    try:
        return loop.run_until_complete(asyncio.wait_for(body(loop), LIMIT))
    finally:
        loop.close()


def read_all(sock: socket.socket) -> Worker:
    def go() -> bytes:
        out = bytearray()
        sock.settimeout(LIMIT)
        while chunk := sock.recv(1 << 20):
            out += chunk
        return bytes(out)

    return Worker(go)


@pytest.mark.parametrize("kind", LOOPS)
@pytest.mark.parametrize("offset,count", [(0, None), (1000, 2_000_000), (5, None), (len(DATA) - 3, 100)])
def test_range_return_value_and_position(kind: str, src: io.BufferedReader, offset: int, count: int | None) -> None:
    a, b = tcp_pair()
    reader = read_all(b)
    before = _transport.STATS["bytes"]

    async def body(loop: asyncio.AbstractEventLoop) -> int:
        transport, _ = await loop.create_connection(Recorder, sock=a)
        try:
            return await loop.sendfile(transport, src, offset, count)
        finally:
            transport.close()

    expected = DATA[offset : offset + count] if count else DATA[offset:]
    assert run(kind, body) == len(expected)
    assert src.tell() == offset + len(expected)
    assert reader.result() == expected
    if kind == "zcopy":
        assert _transport.STATS["bytes"] - before == len(expected)
    b.close()


@pytest.mark.parametrize("kind", LOOPS)
def test_buffered_writes_go_first_and_nothing_interleaves(kind: str, src: io.BufferedReader) -> None:
    a, b = tcp_pair()
    prefix, suffix = data_of(8 << 20, seed=9), b"--the end--"

    async def body(loop: asyncio.AbstractEventLoop) -> int:
        transport, proto = await loop.create_connection(Recorder, sock=a)
        transport.write(prefix)  # the peer is not reading yet: most of it stays buffered
        assert transport.get_write_buffer_size() > 0
        reader = read_all(b)
        sent = await loop.sendfile(transport, src)
        transport.write(suffix)
        transport.close()
        await proto.lost
        assert reader.result() == prefix + DATA + suffix
        return sent

    assert run(kind, body) == len(DATA)
    b.close()


@pytest.mark.parametrize("kind", LOOPS)
def test_reading_resumes_after(kind: str, src: io.BufferedReader) -> None:
    a, b = tcp_pair()

    async def body(loop: asyncio.AbstractEventLoop) -> bytes:
        transport, proto = await loop.create_connection(Recorder, sock=a)
        reader = Worker(lambda: b.recv(1) and b.sendall(b"hello") or _recv_exact(b, len(DATA) - 1))
        await loop.sendfile(transport, src)
        assert reader.result()
        while len(proto.received) < 5:
            await asyncio.sleep(0.01)
        transport.close()
        return bytes(proto.received)

    assert run(kind, body) == b"hello"
    b.close()


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    out = bytearray()
    sock.settimeout(LIMIT)
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        assert chunk
        out += chunk
    return bytes(out)


def _outcome(kind: str, call: Callable[[asyncio.AbstractEventLoop, asyncio.Transport], Awaitable[Any]]) -> Any:
    a, b = tcp_pair()
    reader = read_all(b)

    async def body(loop: asyncio.AbstractEventLoop) -> Any:
        transport, _ = await loop.create_connection(Recorder, sock=a)
        try:
            return await call(loop, transport)
        except Exception as e:  # compared across loops
            return (type(e), str(e).replace(repr(transport), "<transport>"))
        finally:
            transport.close()

    try:
        return run(kind, body), reader.result()
    finally:
        b.close()


def _text_file(tmp: Path) -> Any:
    p = tmp / "t.txt"
    p.write_text("text")
    return open(p)


CASES: dict[str, Callable[[Path, io.BufferedReader], Callable[[asyncio.AbstractEventLoop, asyncio.Transport], Awaitable[Any]]]] = {
    "closing": lambda tmp, f: lambda loop, t: (t.close(), loop.sendfile(t, f))[1],
    "text-mode": lambda tmp, f: lambda loop, t: loop.sendfile(t, _text_file(tmp)),
    "count-0": lambda tmp, f: lambda loop, t: loop.sendfile(t, f, 0, 0),
    "count-str": lambda tmp, f: lambda loop, t: loop.sendfile(t, f, 0, "1"),  # type: ignore[arg-type]
    "offset-negative": lambda tmp, f: lambda loop, t: loop.sendfile(t, f, -1),
    "bytesio": lambda tmp, f: lambda loop, t: loop.sendfile(t, io.BytesIO(b"abc" * 50_000), 7),
    "bytesio-no-fallback": lambda tmp, f: lambda loop, t: loop.sendfile(t, io.BytesIO(b"abc"), fallback=False),
}


@pytest.mark.parametrize("case", list(CASES))
def test_same_outcome_as_asyncio(case: str, tmp_path: Path, src: io.BufferedReader) -> None:
    ours = _outcome("zcopy", CASES[case](tmp_path, src))
    src.seek(0)
    theirs = _outcome("asyncio", CASES[case](tmp_path, src))
    assert ours == theirs


@pytest.mark.parametrize("kind", LOOPS)
def test_peer_reset_mid_file(kind: str, src: io.BufferedReader, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(data_of(64 << 20, seed=3))
    a, b = tcp_pair()
    b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)

    def reset() -> None:
        _recv_exact(b, 100_000)
        b.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        b.close()

    async def body(loop: asyncio.AbstractEventLoop) -> tuple[type, int, bool]:
        transport, proto = await loop.create_connection(Recorder, sock=a)
        peer = Worker(reset)
        with open(big, "rb") as f:
            try:
                await loop.sendfile(transport, f)
                raise AssertionError("sendfile finished into a reset peer")
            except ConnectionError as e:
                err, pos = type(e), f.tell()
        peer.result()
        await proto.lost  # the connection's own protocol still learns the connection is gone
        return err, pos, transport.is_closing()

    err, pos, closing = run(kind, body)
    assert issubclass(err, ConnectionError)
    assert 100_000 <= pos < 64 << 20
    assert closing


@pytest.mark.parametrize("kind", LOOPS)
@pytest.mark.parametrize("fallback", [True, False])
def test_tls_transport_never_gets_plaintext(kind: str, fallback: bool, tmp_path: Path, src: io.BufferedReader) -> None:
    cert, key = make_cert(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context()
    client_ctx.check_hostname = False
    client_ctx.verify_mode = ssl.CERT_NONE
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(LIMIT)

    def peer() -> bytes:
        # A real TLS server end: what it decrypts must be the file, exactly once (the wire itself
        # is checked for plaintext in test_web.py's TLS tests).
        conn, _ = listener.accept()
        with server_ctx.wrap_socket(conn, server_side=True) as tls:
            tls.settimeout(LIMIT)
            out = bytearray()
            while chunk := tls.recv(1 << 20):
                out += chunk
        return bytes(out)

    w = Worker(peer)
    before = _transport.STATS["bytes"]

    async def body(loop: asyncio.AbstractEventLoop) -> Any:
        transport, proto = await loop.create_connection(
            Recorder, "127.0.0.1", listener.getsockname()[1], ssl=client_ctx, server_hostname="127.0.0.1"
        )
        try:
            return await loop.sendfile(transport, src, fallback=fallback)
        except RuntimeError as e:
            return type(e)
        finally:
            transport.close()
            await proto.lost

    result = run(kind, body)
    got = w.result()
    listener.close()
    if fallback:
        assert result == len(DATA) and got == DATA
    else:
        assert result is RuntimeError and got == b""
    assert _transport.STATS["bytes"] == before
