"""zcopy.send_parts: whole responses in one call over real loopback sockets.

Exact bytes (bytes, bytearray, memoryview, file objects and raw descriptors as parts), one TCP
segment for a small response, resumes after timeouts that end byte-exact, refusals before any
byte, a reset peer, and Ctrl-C against a stalled peer in a real child process.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import ssl
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any, Callable

import pytest
from conftest import LIMIT, data_of, drain, tcp_pair

import zcopy

HEADER = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 4096\r\n"
    b"Cache-Control: max-age=3600\r\nServer: zcopy-test\r\n\r\n"
)
# tcpi_segs_out's offset in the kernel's struct tcp_info (Linux 4.2+).
TCPI_SEGS_OUT = 136


def segs_out(sock: socket.socket) -> int:
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    assert len(info) >= TCPI_SEGS_OUT + 4
    return int(struct.unpack_from("I", info, TCPI_SEGS_OUT)[0])


def idle(sock: socket.socket) -> None:
    """Waits until everything sent on sock is acknowledged (SIOCOUTQ is 0)."""
    deadline = time.monotonic() + LIMIT
    while struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0]:
        assert time.monotonic() < deadline, "the peer never acknowledged"
        time.sleep(0.001)


def small_buffers(*socks: socket.socket) -> None:
    for s in socks:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)


def test_every_kind_of_part_arrives_exactly(tmpfile: Callable[[bytes], Path]) -> None:
    data = data_of(300_000, 1)
    path = tmpfile(data)
    c, s = tcp_pair()
    peer = drain(s)
    with open(path, "rb") as f:
        fd = os.open(path, os.O_RDONLY)
        try:
            parts: list[Any] = [
                HEADER,
                (f, 10, 4096),
                bytearray(b"--boundary\r\n"),
                memoryview(b"xxContent-Range: bytes 100000-299999\r\n\r\n")[2:],
                (fd, 100_000, 200_000),
                b"\r\n--boundary--\r\n",
            ]
            rep = zcopy.send_parts(c, parts)
            assert f.tell() == 0, "file parts never move the position"
        finally:
            os.close(fd)
    c.close()
    want = (
        HEADER + data[10:4106] + b"--boundary\r\nContent-Range: bytes 100000-299999\r\n\r\n"
        + data[100_000:300_000] + b"\r\n--boundary--\r\n"
    )
    got = peer.result()
    assert got == want
    assert rep.bytes == len(want)
    s.close()


def test_small_response_is_one_segment(tmpfile: Callable[[bytes], Path]) -> None:
    path = tmpfile(data_of(4096, 2))
    c, s = tcp_pair()
    # As HTTP servers do: without it Nagle holds a response while the previous one is unacked,
    # and responses merge into fewer segments than they are.
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    peer = drain(s)
    head = HEADER[:-2] + b"X-Pad: " + b"p" * (200 - len(HEADER) - 9) + b"\r\n\r\n"
    assert len(head) == 200
    with open(path, "rb") as f:
        for _ in range(20):
            # MSG_MORE holds the header until the file's send, unless an ACK for earlier data
            # arrives in between and pushes it (TCP_NODELAY): start each response on an idle
            # connection, as a request/response server does.
            idle(c)
            before = segs_out(c)
            zcopy.send_parts(c, [head, (f, 0, 4096)])
            assert segs_out(c) - before == 1, "header + 4 KiB file in one segment"
        assert c.getsockopt(socket.IPPROTO_TCP, socket.TCP_CORK) == 0
    c.close()
    assert len(peer.result()) == 20 * (200 + 4096)
    s.close()


@pytest.mark.parametrize("timeout", [0.0, 0.03])
def test_timeouts_resume_to_a_byte_exact_whole(
    timeout: float, tmpfile: Callable[[bytes], Path]
) -> None:
    data = data_of(3 << 20, 3)
    path = tmpfile(data)
    c, s = tcp_pair()
    small_buffers(c, s)
    with open(path, "rb") as f:
        parts: list[Any] = [HEADER, (f, 0, 2 << 20), b"\r\n--b\r\n", (f, 2 << 20, 1 << 20), b"END"]
        total = len(HEADER) + (3 << 20) + 7 + 3
        done, early, calls = 0, 0, 0
        peer = None
        deadline = time.monotonic() + LIMIT
        while done < total:
            calls += 1
            if calls == 3:
                peer = drain(s)
            try:
                done += zcopy.send_parts(c, parts, timeout=timeout, skip=done).bytes
            except (BlockingIOError, TimeoutError) as e:
                done += e.bytes_transferred  # type: ignore[attr-defined]
                early += 1
                if timeout == 0:
                    import select

                    select.select([], [c], [], 0.02)
            assert time.monotonic() < deadline, f"resume loop stuck at {done}"
    c.close()
    assert peer is not None
    got = peer.result()
    assert got == HEADER + data[: 2 << 20] + b"\r\n--b\r\n" + data[2 << 20 :] + b"END"
    assert early >= 2
    s.close()


def test_bad_parts_are_refused_before_any_byte(tmpfile: Callable[[bytes], Path]) -> None:
    path = tmpfile(data_of(1000, 4))
    c, s = tcp_pair()
    r, w = os.pipe()
    try:
        with open(path, "rb") as f:
            with pytest.raises(ValueError, match="past the end"):
                zcopy.send_parts(c, [HEADER, (f, 500, 501)])
            with pytest.raises(ValueError, match="skip"):
                zcopy.send_parts(c, [HEADER], skip=len(HEADER) + 1)
            with pytest.raises(ValueError):
                zcopy.send_parts(c, [(f, -1, 10)])
            with pytest.raises(ValueError, match="file, offset, length"):
                zcopy.send_parts(c, [(f, 0)])
            with pytest.raises(TypeError, match="bytes-like"):
                zcopy.send_parts(c, ["text is not bytes"])
            with pytest.raises(zcopy.UnsupportedError):
                zcopy.send_parts(c, [(r, 0, 1)])
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            with ctx.wrap_socket(socket.socket(), do_handshake_on_connect=False) as tls:
                with pytest.raises(TypeError, match="TLS"):
                    zcopy.send_parts(tls, [HEADER, (f, 0, 10)])
        assert zcopy.send_parts(c, []).bytes == 0
        s.setblocking(False)
        with pytest.raises(BlockingIOError):
            s.recv(1)  # nothing from any refused call reached the peer
    finally:
        os.close(r)
        os.close(w)
        c.close()
        s.close()


def test_reset_peer_is_an_error_with_the_count(tmpfile: Callable[[bytes], Path]) -> None:
    path = tmpfile(data_of(16 << 20, 5))
    c, s = tcp_pair()
    small_buffers(c)

    def reset_after_some() -> int:
        got = 0
        while got < 100_000:
            got += len(s.recv(100_000 - got))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
        return got

    from conftest import Worker

    peer = Worker(reset_after_some)
    with open(path, "rb") as f:
        with pytest.raises((ConnectionResetError, BrokenPipeError)) as info:
            zcopy.send_parts(c, [HEADER, (f, 0, 16 << 20)])
    assert info.value.bytes_transferred >= peer.result()  # type: ignore[attr-defined]
    c.close()


CHILD = r"""
import json, socket, sys, time, zcopy
srv = socket.create_server(("127.0.0.1", 0))
c = socket.create_connection(srv.getsockname())
s, _ = srv.accept()
f = open(sys.argv[1], "rb")
print("ready", flush=True)
try:
    zcopy.send_parts(c, [b"HEADER\r\n\r\n", (f, 0, 64 << 20)])
    print(json.dumps({"error": "send_parts returned"}), flush=True)
except KeyboardInterrupt as e:
    print(json.dumps({"caught": time.monotonic(), "bytes": getattr(e, "bytes_transferred", None)}),
          flush=True)
"""


def test_ctrl_c_reaches_a_stalled_response(tmp_path: Path) -> None:
    src = tmp_path / "big"
    src.write_bytes(data_of(64 << 20, 6))
    p = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(src)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert p.stdout is not None
        assert p.stdout.readline().strip() == "ready"
        time.sleep(0.5)
        sent = time.monotonic()
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=LIMIT)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert "error" not in result, result
    assert result["caught"] - sent < 0.5
    assert isinstance(result["bytes"], int) and result["bytes"] > 0
