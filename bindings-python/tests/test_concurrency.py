"""A thousand transfers at once through the binding: file -> TCP from threads (the engine runs
with the GIL released), large enough that Auto splices where the pipe budget allows and sends
the rest with sendfile; every peer gets exactly its range."""

from __future__ import annotations

import resource
import threading
import zlib
from pathlib import Path

import zcopy

from conftest import LIMIT, data_of, tcp_pair

TRANSFERS = 1000
# Past Auto's 4 MiB splice threshold for file -> TCP, unaligned at the end.
EACH = (4 << 20) + 4096


def raise_nofile_limit() -> int:
    """Raises the soft descriptor limit to the hard one; returns it."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def test_a_thousand_concurrent_transfers_are_byte_exact(tmp_path: Path) -> None:
    # Each transfer holds about eight descriptors (file, two sockets, the listener's accept,
    # a pipe): fewer transfers where the limit cannot be raised, and the test says so.
    n = min(TRANSFERS, (raise_nofile_limit() - 256) // 8)
    if n < TRANSFERS:
        print(f"only {n} transfers: RLIMIT_NOFILE is too low for a thousand")
    data = data_of(16 << 20, 11)
    path = tmp_path / "src"
    path.write_bytes(data)
    start = threading.Barrier(n, timeout=LIMIT)
    failures: list[str] = []

    def one(i: int) -> None:
        offset = (i * 4096) % (len(data) - EACH)
        tx, rx = tcp_pair()
        got = [0, 0]  # bytes, crc32

        def read() -> None:
            while chunk := rx.recv(1 << 20):
                got[0] += len(chunk)
                got[1] = zlib.crc32(chunk, got[1])

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            with open(path, "rb") as f:
                start.wait()
                report = zcopy.transfer(f, tx, offset=offset, count=EACH)
            tx.close()
            reader.join(LIMIT)
            want = zlib.crc32(data[offset : offset + EACH])
            if report.bytes != EACH or got != [EACH, want]:
                failures.append(f"transfer {i}: reported {report.bytes}, received {got[0]} bytes")
        except Exception as e:  # one line per failing transfer, all checked below
            failures.append(f"transfer {i}: {e!r}")
        finally:
            tx.close()
            rx.close()

    old = threading.stack_size(256 << 10)
    try:
        workers = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
        for w in workers:
            w.start()
    finally:
        threading.stack_size(old)
    for w in workers:
        w.join(4 * LIMIT)
    assert not any(w.is_alive() for w in workers), "a transfer hung"
    assert not failures, f"{len(failures)} of {n} failed, first: {failures[:3]}"
