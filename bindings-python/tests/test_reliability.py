"""Regression tests for issue 10 where it shows in Python: TLS sockets, cancelled aio sends,
the sender under concurrent readers, buffered sources, and bytes lost to a full disk."""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import zcopy
import zcopy.aio
from conftest import LIMIT, data_of, drain, tcp_pair, unix_pair

# ---------------------------------------------------------------------------------------------
# TLS: never plaintext below an ssl.SSLSocket


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command to make a certificate")
    d = tmp_path_factory.mktemp("tls")
    key, crt = str(d / "k.pem"), str(d / "c.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt,
         "-days", "1", "-subj", "/CN=localhost"],
        check=True, capture_output=True, timeout=LIMIT,
    )
    return key, crt


def tls_pair(cert: tuple[str, str]) -> tuple[ssl.SSLSocket, ssl.SSLSocket, socket.socket]:
    """A TLS client and server over loopback, plus a raw view of the server's TCP socket."""
    key, crt = cert
    srv_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    srv_ctx.load_cert_chain(crt, key)
    cli_ctx = ssl.create_default_context()
    cli_ctx.check_hostname = False
    cli_ctx.verify_mode = ssl.CERT_NONE
    lst = socket.create_server(("127.0.0.1", 0))
    got: dict[str, Any] = {}

    def accept() -> None:
        raw, _ = lst.accept()
        got["srv"] = srv_ctx.wrap_socket(raw, server_side=True)

    t = threading.Thread(target=accept)
    t.start()
    cli = cli_ctx.wrap_socket(socket.create_connection(lst.getsockname()), server_hostname="localhost")
    t.join(LIMIT)
    lst.close()
    srv: ssl.SSLSocket = got["srv"]
    wire = socket.socket(fileno=os.dup(srv.fileno()))
    return cli, srv, wire


def test_tls_sockets_are_refused_before_their_descriptor_is_touched(
    cert: tuple[str, str], tmp_path: Path
) -> None:
    cli, srv, wire = tls_pair(cert)
    f = tmp_path / "secret"
    f.write_bytes(b"TOP-SECRET\n" * 100)
    try:
        with open(f, "rb") as src:
            with pytest.raises(TypeError, match="TLS"):
                zcopy.transfer(src, cli)
            with pytest.raises(TypeError, match="TLS"):
                zcopy.transfer(cli, src)
            a, b = tcp_pair()
            with pytest.raises(TypeError, match="TLS"):
                zcopy.relay(cli, a)
            a.close()
            b.close()
            with pytest.raises(TypeError, match="TLS"):
                zcopy.ZeroCopySender(cli)
            cli.setblocking(False)
            with pytest.raises(TypeError):
                asyncio.run(zcopy.aio.sock_sendfile(cli, src))
            cli.setblocking(True)
        # Nothing at all reached the wire.
        wire.setblocking(False)
        with pytest.raises(BlockingIOError):
            wire.recv(1 << 16, socket.MSG_PEEK)
    finally:
        for s in (cli, srv, wire):
            s.close()


def test_socket_sendfile_over_tls_encrypts(cert: tuple[str, str], tmp_path: Path) -> None:
    cli, srv, wire = tls_pair(cert)
    data = b"TOP-SECRET-PAYLOAD\n" * 5000
    f = tmp_path / "secret"
    f.write_bytes(data)
    try:
        with open(f, "rb") as src:
            out: dict[str, Any] = {}

            def read() -> None:
                wire.settimeout(LIMIT)
                out["wire"] = wire.recv(1 << 16, socket.MSG_PEEK)
                buf = b""
                while len(buf) < len(data):
                    chunk = srv.recv(1 << 16)
                    if not chunk:
                        break
                    buf += chunk
                out["plain"] = buf

            t = threading.Thread(target=read)
            t.start()
            assert zcopy.socket_sendfile(cli, src) == len(data)
            t.join(LIMIT)
            assert src.tell() == len(data)
        assert b"TOP-SECRET" not in out["wire"], "plaintext on the wire"
        assert out["plain"] == data
    finally:
        for s in (cli, srv, wire):
            s.close()


# ---------------------------------------------------------------------------------------------
# aio: a cancelled send leaves the position at offset + what the peer received


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
def test_aio_cancel_from_an_object_without_fileno_keeps_the_position_exact(loop_kind: str) -> None:
    data = bytes(range(256)) * (8 << 12)
    offset = 4097

    async def main() -> tuple[int, bytes]:
        cli, srv = tcp_pair()
        cli.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        cli.setblocking(False)
        f = io.BytesIO(data)
        task = asyncio.ensure_future(zcopy.aio.sock_sendfile(cli, f, offset))
        await asyncio.sleep(0.3)  # the peer has read nothing yet
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        pos = f.tell()
        cli.close()
        got = b""
        srv.settimeout(LIMIT)
        while chunk := srv.recv(1 << 20):
            got += chunk
        srv.close()
        return pos, got

    if loop_kind == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        pos, got = uvloop.run(main())
    else:
        pos, got = asyncio.run(main())
    assert got == data[offset : offset + len(got)]
    assert pos == offset + len(got)


# ---------------------------------------------------------------------------------------------
# ZeroCopySender: readers on other threads never deadlock a sending thread


def test_sender_counters_read_while_another_thread_sends() -> None:
    if not zcopy.capabilities()["msg_zerocopy"]:
        pytest.skip("no MSG_ZEROCOPY")
    a, b = tcp_pair()
    reader = drain(b)
    stop = time.monotonic() + 2
    errors: list[BaseException] = []
    with zcopy.ZeroCopySender(a) as zs:

        def send() -> None:
            try:
                while time.monotonic() < stop:
                    zs.send(bytearray(64 << 10))
                    zs.poll(0)
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        def look() -> None:
            while time.monotonic() < stop:
                _ = (zs.pending, zs.sent, repr(zs), zs.closed, zs.completions)

        threads = [threading.Thread(target=send), threading.Thread(target=look)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(LIMIT)
        assert not any(t.is_alive() for t in threads), "deadlock"
        zs.poll(None)
    a.close()
    reader.join(LIMIT)
    assert not errors, errors


# ---------------------------------------------------------------------------------------------
# A buffered non-seekable source delivers its read-ahead first


@pytest.mark.parametrize("count", [None, 3000, 100])
def test_buffered_socket_reader_after_readline_keeps_its_read_ahead(
    count: int | None, tmp_path: Path
) -> None:
    body = data_of(200_000, 3)
    a, b = unix_pair()
    t = threading.Thread(target=lambda: (a.sendall(b"HEADER\n" + body), a.close()))
    t.start()
    r = b.makefile("rb")
    assert r.readline() == b"HEADER\n"
    out = tmp_path / "body"
    with open(out, "wb") as f:
        rep = zcopy.transfer(r, f, count=count)
    t.join(LIMIT)
    want = body if count is None else body[:count]
    assert rep.bytes == len(want)
    assert out.read_bytes() == want
    # What was not asked for is still readable, read-ahead included.
    assert r.read() == body[len(want) :]
    r.close()
    b.close()


# ---------------------------------------------------------------------------------------------
# A full disk: bytes taken from a socket and refused are counted


def test_a_full_disk_says_how_many_bytes_were_lost(tmp_path: Path) -> None:
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "zcopy-py", str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        data = data_of(3 << 20, 5)
        for method in ("auto", "splice", "read_write"):
            a, b = unix_pair()
            t = threading.Thread(target=lambda: (a.sendall(data), a.close()))
            t.start()
            with open(mnt / "out", "wb") as f:
                with pytest.raises(OSError) as ei:
                    zcopy.transfer(b, f, method=method)
            rest = b""
            while chunk := b.recv(1 << 20):
                rest += chunk
            t.join(LIMIT)
            b.close()
            e: Any = ei.value
            assert e.errno == 28, e  # ENOSPC
            on_disk = (mnt / "out").read_bytes()
            assert len(on_disk) == e.bytes_transferred
            assert e.bytes_transferred + e.bytes_lost + len(rest) == len(data), method
            (mnt / "out").unlink()
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)

