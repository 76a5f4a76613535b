"""zcopy.transfer between files, pipes, TCP and Unix sockets, every byte checked."""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zcopy
from conftest import Worker, data_of, drain, feed_fd, feed_sock, read_all_fd, tcp_pair, unix_pair

KINDS = ["file", "pipe", "tcp", "unix"]
METHODS = [m.value for m in zcopy.Method]


class Src:
    def __init__(self, kind: str, data: bytes, tmp_path: Path, closing: Callable[[Any], Any]) -> None:
        self.kind = kind
        self.feeder: Worker | None = None
        if kind == "file":
            p = tmp_path / "src"
            p.write_bytes(data)
            self.obj: Any = closing(open(p, "rb", buffering=0))
        elif kind == "pipe":
            r, w = os.pipe()
            closing(r)
            self.obj = r
            self.feeder = feed_fd(w, data)
        else:
            a, b = tcp_pair() if kind == "tcp" else unix_pair()
            closing(a)
            closing(b)
            self.obj = a
            self.feeder = feed_sock(b, data)

    def finish(self) -> None:
        if self.feeder is not None:
            self.feeder.result()


class Dst:
    def __init__(self, kind: str, tmp_path: Path, closing: Callable[[Any], Any]) -> None:
        self.kind = kind
        self.path = tmp_path / "dst"
        if kind == "file":
            self.obj: Any = open(self.path, "wb", buffering=0)
        elif kind == "pipe":
            r, w = os.pipe()
            closing(r)
            self.obj = w
            self.reader = Worker(lambda: read_all_fd(r))
        else:
            a, b = tcp_pair() if kind == "tcp" else unix_pair()
            closing(b)
            self.obj = a
            self.reader = drain(b)

    def received(self) -> bytes:
        if self.kind == "file":
            self.obj.close()
            return self.path.read_bytes()
        if self.kind == "pipe":
            os.close(self.obj)
        else:
            self.obj.shutdown(socket.SHUT_WR)
            self.obj.close()
        data: bytes = self.reader.result()
        return data


def digest(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


@pytest.mark.parametrize("size", [0, 1, 4097, (1 << 20) + 1])
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dst_kind", KINDS)
@pytest.mark.parametrize("src_kind", KINDS)
def test_matrix(
    src_kind: str, dst_kind: str, method: str, size: int, tmp_path: Path, closing: Callable[[Any], Any]
) -> None:
    """Every pair x every method: the bytes arrive intact, or UnsupportedError consumes nothing
    (Auto then moves everything)."""
    data = data_of(size, seed=size)
    src = Src(src_kind, data, tmp_path, closing)
    dst = Dst(dst_kind, tmp_path, closing)
    try:
        report = zcopy.transfer(src.obj, dst.obj, method=method)
    except zcopy.UnsupportedError as e:
        assert e.bytes_transferred == 0
        assert method != "auto"
        report = zcopy.transfer(src.obj, dst.obj)
    assert report.bytes == size
    src.finish()
    got = dst.received()
    assert len(got) == size and digest(got) == digest(data)


@pytest.mark.parametrize("dst_kind", KINDS)
def test_fallback_true_never_unsupported(dst_kind: str, tmp_path: Path, closing: Callable[[Any], Any]) -> None:
    data = data_of(70000)
    src = Src("pipe", data, tmp_path, closing)
    dst = Dst(dst_kind, tmp_path, closing)
    report = zcopy.transfer(src.obj, dst.obj, method=zcopy.Method.COPY_FILE_RANGE, fallback=True)
    assert report.bytes == len(data)
    src.finish()
    assert dst.received() == data


def test_report_fields(tmpfile: Callable[[bytes], Path], tmp_path: Path) -> None:
    data = data_of(100_000)
    with open(tmpfile(data), "rb") as f, open(tmp_path / "out", "wb") as g:
        r = zcopy.transfer(f, g)
    assert isinstance(r, zcopy.Report)
    assert r.bytes == len(data)
    assert r.method in METHODS and r.method != "auto"
    assert isinstance(r.syscalls, int) and r.syscalls >= 1
    assert isinstance(r.fallbacks, int) and r.fallbacks == len(r.fallback_details)
    assert r.zc_sends == 0 and r.zc_copied == 0
    assert "bytes=100000" in repr(r)


def test_method_enum() -> None:
    assert [m.value for m in zcopy.Method] == [
        "auto",
        "read_write",
        "mmap",
        "sendfile",
        "splice",
        "copy_file_range",
        "msg_zerocopy",
    ]
    assert zcopy.Method("splice") is zcopy.Method.SPLICE
    assert isinstance(zcopy.Method.SPLICE, str) and zcopy.Method.SPLICE == "splice"


def test_count_offset_rules(tmpfile: Callable[[bytes], Path], closing: Callable[[Any], Any]) -> None:
    data = data_of(10_000)
    fd = closing(os.open(tmpfile(data), os.O_RDONLY))
    r, w = os.pipe()
    closing(r)
    closing(w)
    # count 0: immediate success, nothing moves.
    assert zcopy.transfer(fd, w, count=0).bytes == 0
    # offset given: read from there, the position stays.
    os.lseek(fd, 7, os.SEEK_SET)
    assert zcopy.transfer(fd, w, offset=100, count=50).bytes == 50
    assert os.read(r, 100) == data[100:150]
    assert os.lseek(fd, 0, os.SEEK_CUR) == 7
    # offset None: from the position, which advances.
    assert zcopy.transfer(fd, w, count=20).bytes == 20
    assert os.read(r, 100) == data[7:27]
    assert os.lseek(fd, 0, os.SEEK_CUR) == 27
    # count beyond EOF: EOF is not an error.
    assert zcopy.transfer(fd, w, offset=9_990, count=1000).bytes == 10
    assert os.read(r, 100) == data[9_990:]
    # offset at and past EOF: nothing.
    assert zcopy.transfer(fd, w, offset=10_000).bytes == 0
    assert zcopy.transfer(fd, w, offset=1 << 40, count=5).bytes == 0


def test_destination_position_advances_and_append(tmpfile: Callable[[bytes], Path], tmp_path: Path) -> None:
    data = data_of(5000)
    src = tmpfile(data)
    out = tmp_path / "out"
    with open(src, "rb") as f, open(out, "wb") as g:
        zcopy.transfer(f, g)
        f.seek(0)
        zcopy.transfer(f, g, count=100)
        assert g.tell() == 5100
    assert out.read_bytes() == data + data[:100]
    with open(src, "rb") as f, open(out, "ab") as g:
        assert zcopy.transfer(f, g, count=10).bytes == 10
    assert out.read_bytes() == data + data[:100] + data[:10]


def test_file_object_source_read_ahead(tmpfile: Callable[[bytes], Path], tmp_path: Path) -> None:
    """A buffered source is read from tell(), not from the descriptor that read-ahead moved,
    and is left at tell() + bytes."""
    data = data_of(100_000)
    out = tmp_path / "out"
    with open(tmpfile(data), "rb") as f, open(out, "wb") as g:
        assert f.read(10) == data[:10]
        assert os.lseek(f.fileno(), 0, os.SEEK_CUR) > 10  # read-ahead happened
        r = zcopy.transfer(f, g, count=1000)
        assert r.bytes == 1000
        assert f.tell() == 1010
        assert f.read(5) == data[1010:1015]
        r = zcopy.transfer(f, g)
        assert r.bytes == len(data) - 1015
        assert f.tell() == len(data)
        assert f.read() == b""
    assert out.read_bytes() == data[10:1010] + data[1015:]


def test_text_and_random_access_objects(tmpfile: Callable[[bytes], Path], tmp_path: Path) -> None:
    data = b"line one\nline two\n" * 100
    out = tmp_path / "out"
    with open(tmpfile(data), "r", encoding="ascii") as f, open(out, "w+b") as g:
        assert f.readline() == "line one\n"
        assert zcopy.transfer(f, g, count=9).bytes == 9  # "line two\n"
        assert f.readline() == "line one\n"
        g.seek(0)
        assert g.read(3) == b"lin"  # g now holds a read buffer, its descriptor is at 9
        # The destination is flushed (rewound to its logical position 3) before the transfer.
        assert zcopy.transfer(f, g, count=4).bytes == 4  # "line" of "line two\n"
        assert g.tell() == 7
        assert g.read() == b"o\n"
    assert out.read_bytes() == b"linlineo\n"


def test_file_object_destination_is_flushed(tmpfile: Callable[[bytes], Path], tmp_path: Path) -> None:
    data = data_of(3000)
    out = tmp_path / "out"
    with open(tmpfile(data), "rb") as f, open(out, "wb") as g:
        g.write(b"head")  # still in g's buffer
        zcopy.transfer(f, g)
        g.write(b"tail")
    assert out.read_bytes() == b"head" + data + b"tail"


def test_socket_objects_and_makefile(tmpfile: Callable[[bytes], Path], closing: Callable[[Any], Any]) -> None:
    data = data_of(300_000)
    a, b = tcp_pair()
    closing(a)
    closing(b)
    reader = drain(b)
    wfile = a.makefile("wb")
    wfile.write(b"pre")
    with open(tmpfile(data), "rb") as f:
        assert zcopy.transfer(f, wfile).bytes == len(data)
    wfile.close()
    a.shutdown(socket.SHUT_WR)
    assert reader.result() == b"pre" + data


def test_msg_zerocopy_on_loopback(tmpfile: Callable[[bytes], Path], closing: Callable[[Any], Any]) -> None:
    if not zcopy.capabilities()["msg_zerocopy"]:
        pytest.skip("kernel without MSG_ZEROCOPY")
    data = data_of(2 << 20)
    a, b = tcp_pair()
    closing(a)
    closing(b)
    reader = drain(b)
    with open(tmpfile(data), "rb") as f:
        r = zcopy.transfer(f, a, method="msg_zerocopy")
    a.shutdown(socket.SHUT_WR)
    assert reader.result() == data
    assert r.bytes == len(data)
    assert r.zc_copied <= r.zc_sends


def test_large_sparse_file_offset_beyond_4gib(tmp_path: Path, closing: Callable[[Any], Any]) -> None:
    """Offsets and counts past 32 bits go through intact (a sparse 5 GiB file)."""
    p = tmp_path / "sparse"
    tail = data_of(4096, seed=9)
    with open(p, "wb") as f:
        f.seek((5 << 30) - len(tail))
        f.write(tail)
    r, w = os.pipe()
    closing(r)
    closing(w)
    with open(p, "rb") as f:
        rep = zcopy.transfer(f, w, offset=(5 << 30) - len(tail), count=1 << 33)
    assert rep.bytes == len(tail)
    assert os.read(r, 8192) == tail
