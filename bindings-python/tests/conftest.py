"""Real endpoints for the tests: files, pipes, loopback TCP and Unix stream sockets.

Every helper is bounded in time: sockets get timeouts, threads are joined with a limit.
"""

from __future__ import annotations

import os
import random
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# Generous bound for any single wait in a test; a test that needs it has failed anyway.
LIMIT = 30.0

REPO = Path(__file__).resolve().parents[2]


def data_of(size: int, seed: int = 0) -> bytes:
    """Deterministic random bytes (a repeated pattern would hide offset bugs)."""
    return random.Random(seed).randbytes(size)


def tcp_pair() -> tuple[socket.socket, socket.socket]:
    """Two connected loopback TCP sockets (client, server side)."""
    with socket.create_server(("127.0.0.1", 0)) as srv:
        srv.settimeout(LIMIT)
        c = socket.create_connection(srv.getsockname(), timeout=LIMIT)
        s, _ = srv.accept()
    c.settimeout(None)
    s.settimeout(None)
    return c, s


def unix_pair() -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    return a, b


class Worker(threading.Thread):
    """Runs fn in a thread; result() joins with a bound and re-raises its exception."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.fn = fn
        self.value: Any = None
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self.value = self.fn()
        except BaseException as e:  # handed to result()
            self.error = e

    def result(self, timeout: float = LIMIT) -> Any:
        self.join(timeout)
        if self.is_alive():
            raise TimeoutError("worker thread did not finish")
        if self.error is not None:
            raise self.error
        return self.value


def read_all_fd(fd: int) -> bytes:
    chunks = []
    while True:
        b = os.read(fd, 1 << 20)
        if not b:
            return b"".join(chunks)
        chunks.append(b)


def drain(sock: socket.socket) -> Worker:
    """Reads sock until EOF in a thread."""

    def run() -> bytes:
        chunks = []
        sock.settimeout(LIMIT)
        while True:
            b = sock.recv(1 << 20)
            if not b:
                return b"".join(chunks)
            chunks.append(b)

    return Worker(run)


def feed_fd(fd: int, data: bytes, close: bool = True) -> Worker:
    def run() -> int:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        if close:
            os.close(fd)
        return len(data)

    return Worker(run)


def feed_sock(sock: socket.socket, data: bytes) -> Worker:
    def run() -> int:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        return len(data)

    return Worker(run)


@pytest.fixture
def tmpfile(tmp_path: Path) -> Callable[[bytes], Path]:
    counter = iter(range(1_000_000))

    def make(data: bytes) -> Path:
        p = tmp_path / f"f{next(counter)}"
        p.write_bytes(data)
        return p

    return make


@pytest.fixture
def closing() -> Iterator[Callable[[Any], Any]]:
    """Registers sockets / fds / files to close at the end of the test."""
    items: list[Any] = []

    def add(x: Any) -> Any:
        items.append(x)
        return x

    yield add
    for x in reversed(items):
        try:
            if isinstance(x, int):
                os.close(x)
            else:
                x.close()
        except OSError:
            pass
