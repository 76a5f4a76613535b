"""zcopy.socket_sendfile: CPython's own socket.sendfile tests pointed at it, and a side-by-side
comparison with socket.socket.sendfile on the same inputs."""

from __future__ import annotations

import functools
import io
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import zcopy
from conftest import data_of, drain, tcp_pair

test_socket = pytest.importorskip("test.test_socket")


@pytest.fixture(scope="module", autouse=True)
def in_tmp_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    # The CPython tests create their data file (os_helper.TESTFN) in the working directory.
    old = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("cpython-sendfile"))
    yield
    os.chdir(old)


@pytest.fixture(autouse=True)
def sendfile_is_zcopy(monkeypatch: pytest.MonkeyPatch) -> None:
    # The tests also call sock.sendfile(...) directly (non-regular file, non-blocking socket).
    monkeypatch.setattr(socket.socket, "sendfile", zcopy.socket_sendfile)


class TestCPythonSendfileOnZcopy(test_socket.SendfileUsingSendfileTest):  # type: ignore[misc,name-defined]
    """Every test of CPython's SendfileUsingSendfileTest / SendfileUsingSendTest, with the
    method under test replaced by zcopy.socket_sendfile."""

    def meth_from_sock(self, sock: socket.socket) -> Callable[..., int]:
        return functools.partial(zcopy.socket_sendfile, sock)


CASES: list[tuple[int, int | None]] = [
    (0, None),
    (0, 1),
    (5000, None),
    (2007, 100_007),
    (0, 5_000_007),
    (1 << 20, 10),
    (3 << 20, None),  # offset past EOF: nothing
    (100, 1 << 40),  # count past EOF
]


def run_sendfile(fn: Callable[..., int], path: Path, offset: int, count: int | None, position: int) -> tuple[Any, int, bytes]:
    a, b = tcp_pair()
    reader = drain(b)
    with a, b, open(path, "rb") as f:
        f.seek(position)
        try:
            result: Any = fn(a, f, offset, count)
        except Exception as e:  # compared by type and message
            result = (type(e), str(e))
        tell = f.tell()
        a.shutdown(socket.SHUT_WR)
        got: bytes = reader.result()
    return result, tell, got


@pytest.mark.parametrize("offset,count", CASES)
def test_same_as_socket_sendfile(offset: int, count: int | None, tmp_path: Path) -> None:
    data = data_of(2 << 20, seed=7)
    path = tmp_path / "data"
    path.write_bytes(data)
    theirs = run_sendfile(lambda s, f, o, c: socket.socket.sendfile(s, f, o, c), path, offset, count, 123)
    ours = run_sendfile(zcopy.socket_sendfile, path, offset, count, 123)
    assert ours == theirs
    end = None if count is None else offset + count
    assert ours[2] == data[offset:end]


def test_same_errors_as_socket_sendfile(tmp_path: Path) -> None:
    path = tmp_path / "data"
    path.write_bytes(b"abc")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"count": 0}, "rb"),
        ({"count": -1}, "rb"),
        ({"count": "2"}, "rb"),
        ({"count": 0.5}, "rb"),
        ({}, "r"),
    ]
    for kwargs, mode in cases:
        outcomes = []
        for fn in (socket.socket.sendfile, zcopy.socket_sendfile):
            with socket.socket() as s, open(path, mode) as f:
                with pytest.raises((TypeError, ValueError)) as info:
                    fn(s, f, **kwargs)  # type: ignore[operator]
                outcomes.append((type(info.value), str(info.value)))
        assert outcomes[0] == outcomes[1], kwargs
    with socket.socket(type=socket.SOCK_DGRAM) as s, open(path, "rb") as f:
        with pytest.raises(ValueError, match="SOCK_STREAM"):
            zcopy.socket_sendfile(s, f)


def test_non_regular_file_uses_send() -> None:
    data = data_of(100_000, seed=1)
    a, b = tcp_pair()
    reader = drain(b)
    with a, b:
        f = io.BytesIO(data)
        assert zcopy.socket_sendfile(a, f, 10) == len(data) - 10
        assert f.tell() == len(data)
        a.shutdown(socket.SHUT_WR)
        assert reader.result() == data[10:]
