"""Page-cache policies from Python: ``cache="keep" | "drop_behind" | "direct"`` on transfer
and send_parts, residency measured with mincore(2) over an untouched mapping."""

from __future__ import annotations

import ctypes
import mmap
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import data_of, drain, tcp_pair

import zcopy

SIZE = 64 << 20
LEFT_AT_MOST = 24 << 20
_libc = ctypes.CDLL(None, use_errno=True)


def resident(fd: int) -> int:
    """Bytes of the file in the page cache (a fresh mapping that is never touched)."""
    size = os.fstat(fd).st_size
    _libc.mmap.restype = ctypes.c_void_p
    _libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    addr = _libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
    assert addr not in (None, ctypes.c_void_p(-1).value), os.strerror(ctypes.get_errno())
    pages = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
    vec = (ctypes.c_ubyte * pages)()
    try:
        rc = _libc.mincore(ctypes.c_void_p(addr), ctypes.c_size_t(size), vec)
        assert rc == 0, os.strerror(ctypes.get_errno())
    finally:
        _libc.munmap(ctypes.c_void_p(addr), ctypes.c_size_t(size))
    return sum(b & 1 for b in vec) * mmap.PAGESIZE


def cached(tmpfile: Callable[[bytes], Path], data: bytes) -> int:
    path = tmpfile(data)
    with open(path, "rb+") as f:
        os.fsync(f.fileno())  # clean pages: dirty ones cannot be released
    fd = os.open(path, os.O_RDONLY)
    while os.read(fd, 1 << 20):
        pass
    os.lseek(fd, 0, os.SEEK_SET)
    assert resident(fd) >= SIZE * 9 // 10
    return fd


@pytest.mark.parametrize("cache", ["keep", "drop_behind", zcopy.Cache.DIRECT])
def test_policies_leave_the_file_cached_or_not(cache: str, tmpfile: Callable[[bytes], Path]) -> None:
    data = data_of(SIZE, 1)
    fd = cached(tmpfile, data)
    c, s = tcp_pair()
    peer = drain(s)
    try:
        rep = zcopy.transfer(fd, c, cache=cache)
        c.close()
        assert peer.result() == data
        assert rep.bytes == SIZE
        assert os.lseek(fd, 0, os.SEEK_CUR) == SIZE
        left = resident(fd)
        if cache == "keep":
            assert left >= SIZE * 9 // 10
        else:
            assert left <= LEFT_AT_MOST, f"{cache} left {left} bytes resident"
    finally:
        os.close(fd)
        s.close()


def test_send_parts_with_direct_reads(tmpfile: Callable[[bytes], Path]) -> None:
    data = data_of(5_000_000, 2)
    path = tmpfile(data)
    c, s = tcp_pair()
    peer = drain(s)
    with open(path, "rb") as f:
        rep = zcopy.send_parts(c, [b"H\r\n", (f, 1000, 3_000_001), b"T"], cache="direct")
    c.close()
    assert peer.result() == b"H\r\n" + data[1000:3_001_001] + b"T"
    assert rep.method == "read_write"
    s.close()


def test_bad_policies_are_refused(tmpfile: Callable[[bytes], Path]) -> None:
    path = tmpfile(data_of(10_000, 3))
    r, w = os.pipe()
    try:
        with open(path, "rb") as f:
            with pytest.raises(ValueError, match="unknown cache policy"):
                zcopy.transfer(f, w, cache="sometimes")
            with pytest.raises(TypeError):
                zcopy.transfer(f, w, cache=1)  # type: ignore[arg-type]
            with pytest.raises(ValueError, match="O_DIRECT"):
                zcopy.transfer(f, w, method="sendfile", cache="direct")
    finally:
        os.close(r)
        os.close(w)
