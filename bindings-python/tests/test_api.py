"""copyfile, relay, capabilities, version, ZeroCopySender."""

from __future__ import annotations

import os
import pickle
import shutil
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zcopy
from conftest import Worker, data_of, drain, feed_sock, tcp_pair, unix_pair


def test_version_and_capabilities() -> None:
    assert isinstance(zcopy.__version__, str) and zcopy.__version__.count(".") == 2
    caps = zcopy.capabilities()
    assert set(caps) == {m.value for m in zcopy.Method} - {"auto"}
    assert all(isinstance(v, bool) for v in caps.values())
    assert caps["read_write"] is True


def test_public_names() -> None:
    for name in zcopy.__all__:
        assert hasattr(zcopy, name), name
    assert zcopy.Report.__module__ == "zcopy"


def test_copyfile(tmp_path: Path) -> None:
    data = data_of(3 << 20, seed=11)
    src = tmp_path / "src"
    src.write_bytes(data)
    dst = tmp_path / "dst"
    dst.write_bytes(b"old content that is longer than nothing")
    assert zcopy.copyfile(src, dst) == len(data)
    assert dst.read_bytes() == data
    assert zcopy.copyfile(str(src), str(tmp_path / "dst2")) == len(data)
    (tmp_path / "empty").write_bytes(b"")
    assert zcopy.copyfile(tmp_path / "empty", dst) == 0
    assert dst.read_bytes() == b""


def test_copyfile_errors(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.write_bytes(b"abc")
    with pytest.raises(shutil.SameFileError):
        zcopy.copyfile(src, src)
    link = tmp_path / "link"
    os.link(src, link)
    with pytest.raises(shutil.SameFileError):
        zcopy.copyfile(src, link)
    with pytest.raises(FileNotFoundError):
        zcopy.copyfile(tmp_path / "missing", tmp_path / "x")
    with pytest.raises(IsADirectoryError):
        zcopy.copyfile(src, tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(shutil.SpecialFileError):
        zcopy.copyfile(fifo, tmp_path / "y")
    sym = tmp_path / "sym"
    os.symlink(src, sym)
    assert zcopy.copyfile(sym, tmp_path / "z", follow_symlinks=False) == 0
    assert os.readlink(tmp_path / "z") == str(src)


@pytest.mark.parametrize("pair", [tcp_pair, unix_pair])
def test_relay_with_half_close(pair: Callable[[], tuple[socket.socket, socket.socket]], closing: Callable[[Any], Any]) -> None:
    # client <-> (a | relay | b) <-> server
    client, a = pair()
    b, server = pair()
    for s in (client, a, b, server):
        closing(s)
    up = data_of(3 << 20, seed=1)
    down = data_of(1 << 20, seed=2)
    relay = Worker(lambda: zcopy.relay(a, b))

    def client_side() -> bytes:
        sender = threading.Thread(target=lambda: (client.sendall(up), client.shutdown(socket.SHUT_WR)))
        sender.start()
        got = drain(client).result()
        sender.join()
        return got

    def server_side() -> bytes:
        got = drain(server).result()  # until the client's half-close arrives
        server.sendall(down)
        server.shutdown(socket.SHUT_WR)
        return got

    c = Worker(client_side)
    s = Worker(server_side)
    assert s.result() == up
    assert c.result() == down
    assert relay.result() == (len(up), len(down))
    assert a.getblocking() and b.getblocking()


def test_relay_result_is_the_pair_with_attributes(closing: Callable[[Any], Any]) -> None:
    client, a = tcp_pair()
    b, server = tcp_pair()
    for s in (client, a, b, server):
        closing(s)
    up = data_of(300_001, seed=3)
    down = data_of(70_003, seed=4)
    relay = Worker(lambda: zcopy.relay(a, b, timeout=30))
    at_server, at_client = drain(server), drain(client)
    feed_sock(client, up)
    feed_sock(server, down)
    assert at_server.result() == up
    assert at_client.result() == down
    r = relay.result()
    # Existing callers unpack two ints; the attributes say the same and more.
    x, y = r
    assert (x, y) == (len(up), len(down))
    assert isinstance(r, zcopy.Relayed) and isinstance(r, tuple) and len(r) == 2
    assert r == (len(up), len(down))
    assert (r.a_to_b, r.b_to_a) == (x, y)
    # A lone relay gets pipes: the budget is far from exhausted (and does not bind root).
    assert r.buffered is False
    assert "buffered=False" in repr(r)
    # Pickling keeps the flag (tuple's own reduce would drop it).
    p = pickle.loads(pickle.dumps(zcopy.Relayed(1, 2, True)))
    assert p == (1, 2) and p.buffered is True


def test_relay_rejects_non_sockets(tmp_path: Path, closing: Callable[[Any], Any]) -> None:
    (tmp_path / "f").write_bytes(b"abc")
    r = closing(open(tmp_path / "f", "r+b"))
    a, b = unix_pair()
    closing(a)
    closing(b)
    with pytest.raises(zcopy.UnsupportedError) as info:
        zcopy.relay(r, a)
    assert info.value.bytes_transferred == 0  # type: ignore[attr-defined]
    assert info.value.relayed == (0, 0)  # type: ignore[attr-defined]


def test_zero_copy_sender(closing: Callable[[Any], Any]) -> None:
    if not zcopy.capabilities()["msg_zerocopy"]:
        pytest.skip("kernel without MSG_ZEROCOPY")
    a, b = tcp_pair()
    closing(a)
    closing(b)
    reader = drain(b)
    chunks = [data_of(100_000, seed=i) for i in range(20)]
    with zcopy.ZeroCopySender(a) as zs:
        ids = [zs.send(bytearray(c) if i % 2 else memoryview(c)) for i, c in enumerate(chunks)]
        assert ids == list(range(20))
        assert zs.sent == 20
        done = zs.poll(None)
        assert done == 20 and zs.pending == 0
        assert zs.completions >= 1
        assert 0 <= zs.copied <= zs.completions
        assert zs.send(b"") == 20
        import array

        arr = array.array("i", range(1000))
        zs.send(arr)
        assert zs.poll(None) == 22
    assert zs.closed
    with pytest.raises(ValueError, match="closed"):
        zs.send(b"x")
    zs.close()  # closing twice is fine
    a.shutdown(socket.SHUT_WR)
    assert reader.result() == b"".join(chunks) + arr.tobytes()
    assert "closed" in repr(zs)


def test_zero_copy_sender_bad_args(tmp_path: Path, closing: Callable[[Any], Any]) -> None:
    f = closing(open(tmp_path / "f", "wb"))
    # A valid descriptor of the wrong kind is UnsupportedError, as everywhere else.
    with pytest.raises(zcopy.UnsupportedError):
        zcopy.ZeroCopySender(f)
    with pytest.raises(ValueError):
        zcopy.ZeroCopySender(-1)
    with pytest.raises(TypeError):
        zcopy.ZeroCopySender("sock")  # type: ignore[arg-type]
    if zcopy.capabilities()["msg_zerocopy"]:
        a, b = tcp_pair()
        closing(a)
        closing(b)
        with zcopy.ZeroCopySender(a) as zs:
            with pytest.raises(TypeError):
                zs.send("text")  # type: ignore[arg-type]
            with pytest.raises(BufferError):
                zs.send(memoryview(b"abcdef")[::2])
            with pytest.raises(ValueError):
                zs.poll(-1)
