"""Real web servers serving files zero-copy: uvicorn with zcopy.uvicorn's protocols (Starlette,
FastAPI, raw zerocopysend) on uvloop and asyncio, and aiohttp on zcopy.uvloop's loop.

Clients are real: httpx, and raw sockets for pipelining, slow readers and resets. Bodies are
compared byte for byte, and the server's /stats says whether the engine sent them.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import LIMIT, data_of
from web_support import RecordingProxy, Server, connect, make_cert, read_response, request, rss_of, wait_readable

SIZES = {"empty.bin": 0, "small.bin": 1000, "one.bin": (1 << 20) + 7, "big.bin": 48 << 20}
CONFIGS = [
    ("uvicorn-httptools", "uvloop"),
    ("uvicorn-httptools", "asyncio"),
    ("uvicorn-h11", "uvloop"),
    ("uvicorn-h11", "asyncio"),
    ("aiohttp", "zcopy"),
]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("web")
    for i, (name, size) in enumerate(SIZES.items()):
        (d / name).write_bytes(data_of(size, seed=i))
    return d


def content(root: Path, name: str) -> bytes:
    return (root / name).read_bytes()


@pytest.fixture(scope="module", params=CONFIGS, ids=lambda c: f"{c[0]}-{c[1]}")
def server(request: pytest.FixtureRequest, root: Path) -> Iterator[Server]:
    kind, loop = request.param
    srv = Server(kind, loop, root)
    yield srv
    srv.close()
    assert "Traceback" not in srv.stderr(), srv.stderr()


def test_files_byte_exact_through_the_engine(server: Server, root: Path) -> None:
    before = server.stats()
    with httpx.Client(base_url=server.base, timeout=LIMIT) as client:
        for name in SIZES:
            r = client.get(f"/file/{name}")
            assert r.status_code == 200
            assert r.headers["content-length"] == str(SIZES[name])
            assert r.content == content(root, name), name
    after = server.stats()
    assert after["bytes"] - before["bytes"] == sum(SIZES.values())
    if server.kind != "aiohttp":
        assert after["pathsend"]


def test_head_then_get_on_one_connection(server: Server, root: Path) -> None:
    with connect(server.port) as s:
        f = s.makefile("rb")
        s.sendall(request("/file/one.bin", "HEAD"))
        status, headers, body = read_response(f, head=True)
        assert (status, headers["content-length"], body) == (200, str(SIZES["one.bin"]), b"")
        s.sendall(request("/file/one.bin"))
        assert read_response(f)[2] == content(root, "one.bin")


def test_keep_alive_many_requests(server: Server, root: Path) -> None:
    expected = {n: content(root, n) for n in ("small.bin", "one.bin", "empty.bin")}
    with connect(server.port) as s:
        f = s.makefile("rb")
        for i in range(60):
            name = list(expected)[i % 3]
            s.sendall(request(f"/file/{name}"))
            status, _, body = read_response(f)
            assert status == 200 and body == expected[name], (i, name)


def test_pipelined_requests_answered_in_order(server: Server, root: Path) -> None:
    names = ["one.bin", "small.bin", "one.bin", "empty.bin", "one.bin"]
    with connect(server.port) as s:
        f = s.makefile("rb")
        s.sendall(b"".join(request(f"/file/{n}") for n in names) + request("/small") + request("/file/one.bin", "HEAD"))
        for n in names:
            assert read_response(f)[2] == content(root, n), n
        assert read_response(f)[2] == b"small"
        assert read_response(f, head=True)[1]["content-length"] == str(SIZES["one.bin"])


def test_httpx_many_clients(server: Server, root: Path) -> None:
    with httpx.Client(base_url=server.base, timeout=LIMIT, limits=httpx.Limits(max_connections=4)) as client:
        for _ in range(12):
            assert client.get("/file/one.bin").content == content(root, "one.bin")


def test_slow_reader_keeps_server_memory_bounded(server: Server, root: Path) -> None:
    data = content(root, "big.bin")
    base_rss = rss_of(server.proc.pid)
    with connect(server.port) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        f = s.makefile("rb", buffering=0)
        s.sendall(request("/file/big.bin"))
        wait_readable(s)
        # The reader stalls with 48 MiB still to come: the server must not have read it into
        # memory (stock paths buffer at most a chunk or two too).
        got = bytearray(f.read(4096))
        rss = rss_of(server.proc.pid)
        assert rss - base_rss < 16 << 20, (base_rss, rss)
        while b"\r\n\r\n" not in got:
            got += f.read(4096)
        head, _, body = bytes(got).partition(b"\r\n\r\n")
        rest = bytearray(body)
        while len(rest) < len(data):
            chunk = f.read(1 << 20)
            assert chunk, "connection closed early"
            rest += chunk
        assert rest == data
        assert rss_of(server.proc.pid) - base_rss < 16 << 20


@pytest.mark.parametrize("read_first", [0, 256 * 1024])
def test_client_reset_mid_body(server: Server, root: Path, read_first: int) -> None:
    baseline = server.stats()["fds"]
    with connect(server.port) as s:
        s.sendall(request("/file/big.bin"))
        wait_readable(s)
        got = 0
        while got < read_first:
            got += len(s.recv(65536))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST
    # The server lets the connection go: its descriptors come back to what they were (the
    # stats connection is the only one open) and it serves the next client.
    server.wait_until("descriptors released", lambda st: st["fds"] <= baseline)
    with httpx.Client(base_url=server.base, timeout=LIMIT) as client:
        assert client.get("/file/one.bin").content == content(root, "one.bin")
    assert "Traceback" not in server.stderr(), server.stderr()


def test_client_closes_without_reading_the_body(server: Server, root: Path) -> None:
    baseline = server.stats()["fds"]
    for _ in range(5):
        with connect(server.port) as s:
            s.sendall(request("/file/big.bin", close=True))
            wait_readable(s)
            s.shutdown(socket.SHUT_WR)
    server.wait_until("descriptors released", lambda st: st["fds"] <= baseline)
    with httpx.Client(base_url=server.base, timeout=LIMIT) as client:
        assert client.get("/file/small.bin").content == content(root, "small.bin")


# --- uvicorn specifics --------------------------------------------------------------------------
UVICORN = [c for c in CONFIGS if c[0].startswith("uvicorn")]


@pytest.fixture(scope="module", params=UVICORN, ids=lambda c: f"{c[0]}-{c[1]}")
def uvicorn_server(request: pytest.FixtureRequest, root: Path) -> Iterator[Server]:
    srv = Server(request.param[0], request.param[1], root)
    yield srv
    srv.close()


@pytest.mark.parametrize("parts", [1, 3])
@pytest.mark.parametrize("length", [False, True])
def test_zerocopysend_offset_count_parts(uvicorn_server: Server, root: Path, parts: int, length: bool) -> None:
    data = content(root, "one.bin")
    offset, count = 12345, 700001
    q = f"/zerocopysend?name=one.bin&offset={offset}&count={count}&parts={parts}"
    if length:
        q += f"&length={count}"
    with httpx.Client(base_url=uvicorn_server.base, timeout=LIMIT) as client:
        r = client.get(q)
    assert r.status_code == 200
    assert ("transfer-encoding" in r.headers) is not length
    assert r.content == data[offset : offset + count]


def test_content_length_shorter_than_file_sends_no_extra_byte(uvicorn_server: Server, root: Path) -> None:
    # The app announces 1000 bytes and hands 5000: uvicorn's rule (RuntimeError, connection
    # closed) holds, and not one byte past the announced length reaches the client.
    with connect(uvicorn_server.port) as s:
        s.sendall(request("/zerocopysend?name=one.bin&offset=0&count=5000&length=1000"))
        f = s.makefile("rb")
        status, headers, _ = read_response(f, head=True)
        assert status == 200 and headers["content-length"] == "1000"
        assert f.read() == b""  # EOF: the server closed without a body byte
    with httpx.Client(base_url=uvicorn_server.base, timeout=LIMIT) as client:
        assert client.get("/file/small.bin").content == content(root, "small.bin")
    # Each protocol's own words: uvicorn's (httptools) or h11's.
    err = uvicorn_server.stderr()
    assert "Response content longer than Content-Length" in err or "Too much data for declared Content-Length" in err


def test_fastapi_file_response(root: Path) -> None:
    srv = Server("uvicorn-httptools", "uvloop", root, app="fastapi_app")
    try:
        before = srv.stats()
        with httpx.Client(base_url=srv.base, timeout=LIMIT) as client:
            assert client.get("/file/one.bin").content == content(root, "one.bin")
        after = srv.stats()
        assert after["bytes"] - before["bytes"] == SIZES["one.bin"] and after["pathsend"]
    finally:
        srv.close()


def test_stock_uvicorn_offers_no_extension(root: Path) -> None:
    # The control: the same app on stock uvicorn streams through Python (this is what
    # zcopy.uvicorn replaces), so the checks above do tell the two apart.
    srv = Server("uvicorn-stock", "uvloop", root)
    try:
        with httpx.Client(base_url=srv.base, timeout=LIMIT) as client:
            assert client.get("/file/one.bin").content == content(root, "one.bin")
        st = srv.stats()
        assert st["bytes"] == 0 and not st["pathsend"]
    finally:
        srv.close()


# --- TLS: never plaintext on the wire -----------------------------------------------------------
@pytest.mark.parametrize("config", [*UVICORN, ("aiohttp", "zcopy")], ids=lambda c: f"{c[0]}-{c[1]}")
def test_tls_sends_ciphertext(root: Path, config: tuple[str, str]) -> None:
    tls = make_cert(root)
    srv = Server(config[0], config[1], root, tls=tls)
    proxy = RecordingProxy(srv.port)
    try:
        data = content(root, "one.bin")
        with proxy.tls_client() as s, s.makefile("rb") as f:
            for _ in range(2):  # keep-alive over TLS too
                s.sendall(request("/file/one.bin"))
                assert read_response(f)[2] == data
            s.sendall(request("/stats", close=True))
            _, _, body = read_response(f)
        proxy.close()
        assert b'"bytes":0' in body.replace(b" ", b"")  # the engine never wrote on this socket
        assert len(proxy.wire) > 2 * len(data)
        for at in range(0, len(data) - 64, len(data) // 16):
            assert data[at : at + 64] not in proxy.wire, f"plaintext of the file at {at} on the wire"
    finally:
        srv.close()
    assert "Traceback" not in srv.stderr(), srv.stderr()
