"""The error table (tests/cases/errors.tsv), errno and exception classes, progress on errors,
resuming after BlockingIOError and TimeoutError."""

from __future__ import annotations

import builtins
import errno
import fcntl
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zcopy
from conftest import LIMIT, REPO, Worker, data_of, drain, read_all_fd, tcp_pair, unix_pair


def trigger_os(tmpfile: Callable[[bytes], Path], closing: Callable[[Any], Any]) -> None:
    r, w = os.pipe()
    closing(w)
    os.close(r)
    with open(tmpfile(b"x" * 10), "rb") as f:
        zcopy.transfer(f, w)


def trigger_unsupported(tmpfile: Callable[[bytes], Path], closing: Callable[[Any], Any]) -> None:
    r, w = os.pipe()
    closing(r)
    closing(w)
    with open(tmpfile(b"x" * 10), "rb") as f:
        zcopy.transfer(f, w, method="copy_file_range")


def trigger_invalid(tmpfile: Callable[[bytes], Path], closing: Callable[[Any], Any]) -> None:
    r, w = os.pipe()
    closing(r)
    closing(w)
    zcopy.transfer(r, w, offset=5)


def full_nonblocking_socket(closing: Callable[[Any], Any]) -> socket.socket:
    a, b = unix_pair()
    closing(a)
    closing(b)
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    return a


def trigger_would_block(tmpfile: Callable[[bytes], Path], closing: Callable[[Any], Any]) -> None:
    a = full_nonblocking_socket(closing)
    with open(tmpfile(data_of(4 << 20)), "rb") as f:
        zcopy.transfer(f, a, timeout=0)


def trigger_timed_out(tmpfile: Callable[[bytes], Path], closing: Callable[[Any], Any]) -> None:
    a = full_nonblocking_socket(closing)
    with open(tmpfile(data_of(4 << 20)), "rb") as f:
        zcopy.transfer(f, a, timeout=0.05)


def trigger_panic(tmpfile: Callable[[bytes], Path], closing: Callable[[Any], Any]) -> None:
    zcopy._zcopy._panic("boom")


TRIGGERS = {
    "Os": trigger_os,
    "Unsupported": trigger_unsupported,
    "InvalidArgument": trigger_invalid,
    "WouldBlock": trigger_would_block,
    "TimedOut": trigger_timed_out,
    "Panic": trigger_panic,
}


def table() -> list[tuple[str, str]]:
    rows = []
    for line in (REPO / "tests" / "cases" / "errors.tsv").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        cols = line.split("\t")
        rows.append((cols[0], cols[3]))
    return rows


def resolve(name: str) -> type[BaseException]:
    if name.startswith("zcopy."):
        cls = getattr(zcopy, name.removeprefix("zcopy."))
    else:
        cls = getattr(builtins, name)
    assert isinstance(cls, type) and issubclass(cls, BaseException)
    return cls


@pytest.mark.parametrize("code,python", table())
def test_error_table(code: str, python: str, tmpfile: Callable[[bytes], Path], closing: Callable[[Any], Any]) -> None:
    if python == "-":
        assert code in ("Ok", "NullParameter"), f"{code} has no Python mapping"
        return
    cls = resolve(python)
    with pytest.raises(cls) as info:
        TRIGGERS[code](tmpfile, closing)
    if code != "Panic":
        assert isinstance(info.value.bytes_transferred, int)  # type: ignore[attr-defined]


def test_exception_hierarchy() -> None:
    assert issubclass(zcopy.UnsupportedError, OSError)
    assert issubclass(zcopy.PanicError, Exception)
    with pytest.raises(zcopy.PanicError, match="boom"):
        zcopy._zcopy._panic("boom")


def test_oserror_subclass_and_errno(tmpfile: Callable[[bytes], Path], closing: Callable[[Any], Any]) -> None:
    with pytest.raises(BrokenPipeError) as info:
        trigger_os(tmpfile, closing)
    e = info.value
    assert type(e) is BrokenPipeError
    assert e.errno == errno.EPIPE
    assert e.strerror == os.strerror(errno.EPIPE)
    assert e.bytes_transferred == 0  # type: ignore[attr-defined]


def test_unsupported_details(tmpfile: Callable[[bytes], Path], closing: Callable[[Any], Any]) -> None:
    with pytest.raises(zcopy.UnsupportedError) as info:
        trigger_unsupported(tmpfile, closing)
    assert info.value.errno == errno.EOPNOTSUPP
    assert info.value.bytes_transferred == 0  # type: ignore[attr-defined]
    a, b = unix_pair()
    closing(a)
    closing(b)
    with pytest.raises(zcopy.UnsupportedError):
        zcopy.ZeroCopySender(a)


def test_closed_directory_and_access_mode(tmp_path: Path, tmpfile: Callable[[bytes], Path], closing: Callable[[Any], Any]) -> None:
    r, w = os.pipe()
    closing(r)
    closing(w)
    src = tmpfile(b"abc")
    fd = os.open(src, os.O_RDONLY)
    os.close(fd)
    with pytest.raises(OSError) as info:
        zcopy.transfer(fd, w)
    assert info.value.errno == errno.EBADF
    d = closing(os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY))
    with pytest.raises(IsADirectoryError):
        zcopy.transfer(d, w)
    wo = closing(os.open(src, os.O_WRONLY))
    with pytest.raises(OSError) as info:
        zcopy.transfer(wo, w)
    assert info.value.errno == errno.EBADF
    udp = closing(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    with open(src, "rb") as f, pytest.raises(OSError):
        zcopy.transfer(f, udp)


BAD_VALUES: list[tuple[dict[str, Any], type[BaseException]]] = [
    ({"offset": -1}, ValueError),
    ({"count": -1}, ValueError),
    ({"offset": 1 << 64}, ValueError),
    ({"count": 1 << 64}, ValueError),
    ({"offset": 1 << 200}, ValueError),
    ({"method": "teleport"}, ValueError),
    ({"timeout": -1}, ValueError),
    ({"timeout": float("nan")}, ValueError),
    ({"offset": "1"}, TypeError),
    ({"offset": 1.5}, TypeError),
    ({"count": 2.0}, TypeError),
    ({"method": 3}, TypeError),
    ({"timeout": "1"}, TypeError),
]


@pytest.mark.parametrize("kwargs,exc", BAD_VALUES)
def test_bad_values(kwargs: dict[str, Any], exc: type[BaseException], tmpfile: Callable[[bytes], Path], closing: Callable[[Any], Any]) -> None:
    r, w = os.pipe()
    closing(r)
    closing(w)
    with open(tmpfile(b"abc"), "rb") as f:
        with pytest.raises(exc) as info:
            zcopy.transfer(f, w, **kwargs)
        assert not isinstance(info.value, OverflowError)
        assert f.tell() == 0
    os.set_blocking(r, False)
    with pytest.raises(BlockingIOError):
        os.read(r, 10)  # nothing was written


@pytest.mark.parametrize("fd,exc", [(-1, ValueError), (1 << 40, ValueError), (1 << 80, ValueError), ("x", TypeError), (None, TypeError), (2.0, TypeError)])
def test_bad_fds(fd: Any, exc: type[BaseException], closing: Callable[[Any], Any]) -> None:
    r, w = os.pipe()
    closing(r)
    closing(w)
    with pytest.raises(exc) as info:
        zcopy.transfer(fd, w)
    assert not isinstance(info.value, OverflowError)
    with pytest.raises(exc):
        zcopy.transfer(r, fd)


def test_broken_pipe_after_progress(tmpfile: Callable[[bytes], Path], closing: Callable[[Any], Any]) -> None:
    """EPIPE in the middle: the exception tells how far it got and the source position agrees."""
    data = data_of(8 << 20)
    r, w = os.pipe()
    closing(w)

    def read_some_then_close() -> int:
        got = 0
        while got < 200_000:
            got += len(os.read(r, 65536))
        os.close(r)
        return got

    reader = Worker(read_some_then_close)
    fd = closing(os.open(tmpfile(data), os.O_RDONLY))
    with pytest.raises(BrokenPipeError) as info:
        zcopy.transfer(fd, w)
    got = reader.result()
    moved = info.value.bytes_transferred  # type: ignore[attr-defined]
    assert got <= moved < len(data)
    assert os.lseek(fd, 0, os.SEEK_CUR) == moved


def test_sigpipe_default_does_not_kill(tmpfile: Callable[[bytes], Path]) -> None:
    """With SIGPIPE restored to SIG_DFL, a closed peer is still BrokenPipeError, not death."""
    src = tmpfile(b"y" * 100_000)
    code = f"""
import os, signal, zcopy
signal.signal(signal.SIGPIPE, signal.SIG_DFL)
r, w = os.pipe()
os.close(r)
try:
    zcopy.transfer(os.open({str(src)!r}, os.O_RDONLY), w)
except BrokenPipeError as e:
    print("EPIPE", e.bytes_transferred, signal.getsignal(signal.SIGPIPE) == signal.SIG_DFL)
"""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=LIMIT)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["EPIPE", "0", "True"]


def test_would_block_resume(tmpfile: Callable[[bytes], Path], closing: Callable[[Any], Any]) -> None:
    """timeout=0 on a full socket: BlockingIOError with characters_written; the source position
    says where to resume; resuming delivers every byte exactly once."""
    data = data_of(6 << 20, seed=3)
    a, b = unix_pair()
    closing(a)
    closing(b)
    f = closing(open(tmpfile(data), "rb"))
    with pytest.raises(BlockingIOError) as info:
        zcopy.transfer(f, a, timeout=0)
    first = info.value.characters_written
    assert first == info.value.bytes_transferred  # type: ignore[attr-defined]
    assert 0 < first < len(data)
    assert f.tell() == first
    assert a.getblocking()  # O_NONBLOCK was restored
    assert fcntl.fcntl(a.fileno(), fcntl.F_GETFL) & os.O_NONBLOCK == 0
    reader = drain(b)
    total = first
    rounds = 0
    while total < len(data):
        rounds += 1
        try:
            total += zcopy.transfer(f, a, timeout=0).bytes
        except BlockingIOError as e:
            total += e.characters_written
            time.sleep(0.001)
        assert f.tell() == total
    a.shutdown(socket.SHUT_WR)
    assert reader.result() == data


def test_timeout_is_one_deadline(tmpfile: Callable[[bytes], Path], closing: Callable[[Any], Any]) -> None:
    data = data_of(8 << 20)
    a, b = tcp_pair()
    closing(a)
    closing(b)
    fd = closing(os.open(tmpfile(data), os.O_RDONLY))
    t0 = time.monotonic()
    with pytest.raises(TimeoutError) as info:
        zcopy.transfer(fd, a, timeout=0.2)
    elapsed = time.monotonic() - t0
    assert elapsed < 10  # bounded, not a performance check
    e = info.value
    assert e.errno == errno.ETIMEDOUT
    moved = e.bytes_transferred  # type: ignore[attr-defined]
    assert os.lseek(fd, 0, os.SEEK_CUR) == moved
    reader = drain(b)
    rest = zcopy.transfer(fd, a).bytes
    a.shutdown(socket.SHUT_WR)
    assert moved + rest == len(data)
    assert reader.result() == data


def test_socket_timeout_not_consulted(tmpfile: Callable[[bytes], Path], closing: Callable[[Any], Any]) -> None:
    data = data_of(4 << 20)
    a, b = tcp_pair()
    closing(a)
    closing(b)
    a.settimeout(0.01)  # the socket object's own timeout: zcopy.transfer ignores it

    def slow_drain() -> bytes:
        time.sleep(0.3)
        return read_all_fd(b.fileno())

    reader = Worker(slow_drain)
    with open(tmpfile(data), "rb") as f:
        assert zcopy.transfer(f, a).bytes == len(data)
    assert a.gettimeout() == 0.01
    a.shutdown(socket.SHUT_WR)
    assert reader.result() == data
