#!/usr/bin/env python3
"""What streaming a large file does to the page cache, per cache policy, and what it costs.

Run by hand (not part of the tests), with zcopy installed (`pip install ./bindings-python`):

    python bench/python/bench_cache.py [--size-gib 4] [--rounds 3] [--dir /tmp] [--cold]

A file of --size-gib (random bytes, written back to disk) in --dir is streamed to a loopback
TCP receiver in another process (splice into /dev/null) with zcopy.transfer and each cache
policy. Before every run the whole file is read into the page cache (not timed), so every
policy starts from a cached file; with --cold it is dropped from the cache instead, so every
policy reads it from the disk. After the run, the bytes of the file still resident are
counted with mincore(2). Rounds rotate the order of the policies; the table shows median GB/s,
the median of per-round GB/s ratios to keep, and the largest resident size seen.
"""

from __future__ import annotations

import argparse
import ctypes
import mmap
import os
import socket
import statistics
import sys
import tempfile
import time

import zcopy

POLICIES = ["keep", "drop_behind", "direct"]
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]


def resident(fd: int, size: int) -> int:
    """Bytes of the file in the page cache (an untouched mapping and mincore)."""
    addr = _libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
    pages = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
    vec = (ctypes.c_ubyte * pages)()
    try:
        if _libc.mincore(ctypes.c_void_p(addr), ctypes.c_size_t(size), vec) != 0:
            raise OSError(ctypes.get_errno(), "mincore")
    finally:
        _libc.munmap(ctypes.c_void_p(addr), ctypes.c_size_t(size))
    return sum(b & 1 for b in bytes(vec)) * mmap.PAGESIZE


def receiver(srv: socket.socket) -> None:
    null = os.open(os.devnull, os.O_WRONLY)
    r, w = os.pipe()
    while True:
        conn, _ = srv.accept()
        while os.splice(conn.fileno(), w, 1 << 20) > 0:
            os.splice(r, null, 1 << 20)
        conn.sendall(b"k")
        conn.close()


def cold(fd: int, size: int) -> None:
    os.posix_fadvise(fd, 0, size, os.POSIX_FADV_DONTNEED)


def warm(fd: int, size: int) -> None:
    buf = bytearray(1 << 20)
    off = 0
    while off < size:
        n = os.preadv(fd, [buf], off)
        if n <= 0:
            break
        off += n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-gib", type=float, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dir", default=tempfile.gettempdir())
    ap.add_argument("--cold", action="store_true", help="start every run from an uncached file")
    args = ap.parse_args()
    size = int(args.size_gib * (1 << 30))
    path = os.path.join(args.dir, f"zcopy-bench-cache-{os.getpid()}")
    with open(path, "wb") as f:
        chunk = os.urandom(1 << 20)
        for i in range(size >> 20):
            f.write(chunk[i % 7:] + chunk[: i % 7])
        f.flush()
        os.fsync(f.fileno())
    srv = socket.create_server(("127.0.0.1", 0))
    pid = os.fork()
    if pid == 0:
        receiver(srv)
        os._exit(0)
    fd = os.open(path, os.O_RDONLY)
    gbps: dict[str, list[float]] = {p: [] for p in POLICIES}
    left: dict[str, list[int]] = {p: [] for p in POLICIES}
    try:
        start = "uncached" if args.cold else "cached"
        print(f"zcopy {zcopy.__version__}: {size / 2**30:.1f} GiB {start} file in {args.dir}, {args.rounds} rounds, "
              "zcopy.transfer to a loopback receiver in another process", flush=True)
        for rnd in range(args.rounds):
            order = POLICIES[rnd % 3:] + POLICIES[: rnd % 3]
            for pol in order:
                (cold if args.cold else warm)(fd, size)
                before = resident(fd, size)
                sock = socket.create_connection(srv.getsockname())
                t0 = time.perf_counter()
                rep = zcopy.transfer(fd, sock, offset=0, cache=pol)
                sock.shutdown(socket.SHUT_WR)
                assert sock.recv(1) == b"k"
                secs = time.perf_counter() - t0
                sock.close()
                assert rep.bytes == size
                gbps[pol].append(size / secs / 1e9)
                left[pol].append(resident(fd, size))
                print(f"  round {rnd + 1} {pol:12} {size / secs / 1e9:6.2f} GB/s, cached before "
                      f"{before / 2**20:7.0f} MiB, after {left[pol][-1] / 2**20:7.0f} MiB ({rep.method})",
                      file=sys.stderr, flush=True)
        print()
        print(f"{'policy':14} {'GB/s':>7} {'vs keep':>8} {'resident after (max)':>21}")
        for pol in POLICIES:
            ratio = statistics.median(a / b for a, b in zip(gbps[pol], gbps["keep"]))
            print(f"{pol:14} {statistics.median(gbps[pol]):7.2f} {ratio:7.3f}x {max(left[pol]) / 2**20:17.0f} MiB")
    finally:
        os.close(fd)
        os.unlink(path)
        os.kill(pid, 9)
        os.waitpid(pid, 0)


if __name__ == "__main__":
    main()
