#!/usr/bin/env python3
"""Python file -> TCP loopback benchmark: zcopy against the usual ways of sending a file.

Run by hand (not part of the tests), with zcopy installed (`pip install ./bindings-python`):

    python bench/python/bench_sendfile.py [--size-mib 512] [--rounds 7] [--small-seconds 0.5]

A cached file (default 512 MiB, read once before measuring) is sent over loopback TCP to a
receiver in another process that drains with splice(2) into /dev/null and re-arms TCP_QUICKACK
after every read (without it, delayed ACKs and loopback reordering make every sender swing).
Each round runs every sender once, in a rotated order (interleaved rounds); the table shows the
median GB/s, the median sender CPU seconds per GB (getrusage of the sending process only), and
the median of the per-round ratios to the bare os.sendfile loop, the limit. A second table
measures 4 KiB transfers per second (sendfile of 4 KiB at increasing offsets): per round one
connection on which the two senders alternate in blocks of 2000 ops, and the ratio is the median
of the paired per-block ratios.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import zcopy

CHUNK = 1 << 20
SMALL = 4096


# ---------------------------------------------------------------- receiver (child process)


def receiver(listen_fd: int) -> None:
    """Accepts connections forever; drains each with splice into /dev/null, then acks with one
    byte after EOF so the sender's clock covers delivery."""
    srv = socket.socket(fileno=listen_fd)
    null = os.open(os.devnull, os.O_WRONLY)
    r, w = os.pipe()
    try:
        import fcntl

        fcntl.fcntl(w, 1031, CHUNK)  # F_SETPIPE_SZ; keep the default when refused
    except OSError:
        pass
    while True:
        conn, _ = srv.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        fd = conn.fileno()
        while True:
            n = os.splice(fd, w, CHUNK, flags=os.SPLICE_F_MOVE)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            if n == 0:
                break
            while n:
                n -= os.splice(r, null, n, flags=os.SPLICE_F_MOVE)
        conn.sendall(b"k")
        conn.close()


# ---------------------------------------------------------------- senders


def s_read_sendall(f, sock: socket.socket, size: int) -> None:
    f.seek(0)
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    readinto, sendall = f.readinto, sock.sendall
    while True:
        n = readinto(buf)
        if not n:
            break
        sendall(view[:n])


def s_copyfileobj(f, sock: socket.socket, size: int) -> None:
    f.seek(0)
    with sock.makefile("wb", buffering=0) as out:
        shutil.copyfileobj(f, out, CHUNK)


def s_socket_sendfile(f, sock: socket.socket, size: int) -> None:
    assert sock.sendfile(f) == size


def s_os_sendfile(f, sock: socket.socket, size: int) -> None:
    out, fd = sock.fileno(), f.fileno()
    off = 0
    while off < size:
        off += os.sendfile(out, fd, off, size - off)


def s_zcopy_transfer(f, sock: socket.socket, size: int) -> None:
    assert zcopy.transfer(f.fileno(), sock.fileno(), offset=0).bytes == size


def s_zcopy_socket_sendfile(f, sock: socket.socket, size: int) -> None:
    assert zcopy.socket_sendfile(sock, f) == size


SENDERS: dict[str, Callable[..., None]] = {
    "read/sendall loop": s_read_sendall,
    "shutil.copyfileobj": s_copyfileobj,
    "socket.sendfile": s_socket_sendfile,
    "os.sendfile loop (limit)": s_os_sendfile,
    "zcopy.transfer": s_zcopy_transfer,
    "zcopy.socket_sendfile": s_zcopy_socket_sendfile,
}
LIMIT = "os.sendfile loop (limit)"


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def one_bulk(addr: tuple[str, int], fn: Callable[..., None], f, size: int) -> tuple[float, float]:
    sock = socket.create_connection(addr)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    with sock:
        c0, t0 = cpu(), time.perf_counter()
        fn(f, sock, size)
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(1) == b"k"
        t1, c1 = time.perf_counter(), cpu()
    return t1 - t0, c1 - c0


# ---------------------------------------------------------------- small transfers


def small_os_sendfile(fd: int, out: int, ops: int, size: int) -> None:
    off = 0
    for _ in range(ops):
        os.sendfile(out, fd, off, SMALL)
        off = (off + SMALL) % (size - SMALL)


def small_zcopy(fd: int, out: int, ops: int, size: int) -> None:
    transfer = zcopy.transfer
    off = 0
    for _ in range(ops):
        transfer(fd, out, offset=off, count=SMALL)
        off = (off + SMALL) % (size - SMALL)


SMALL_SENDERS = {"os.sendfile 4 KiB (limit)": small_os_sendfile, "zcopy.transfer 4 KiB": small_zcopy}


def small_round(addr: tuple[str, int], fd: int, size: int, seconds: float) -> dict[str, list[float]]:
    """One connection; the senders alternate in short blocks (2000 ops, ~10 ms) so that every
    block of one has a neighbour of the other under the same conditions. Returns each sender's
    ops/s per block, paired by index."""
    sock = socket.create_connection(addr)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    rates: dict[str, list[float]] = {n: [] for n in SMALL_SENDERS}
    with sock:
        out = sock.fileno()
        for fn in SMALL_SENDERS.values():
            fn(fd, out, 200, size)  # warm up
        ops = 2000
        t_end = time.perf_counter() + seconds
        block = 0
        while time.perf_counter() < t_end:
            names = list(SMALL_SENDERS) if block % 2 == 0 else list(SMALL_SENDERS)[::-1]
            for n in names:
                t0 = time.perf_counter()
                SMALL_SENDERS[n](fd, out, ops, size)
                rates[n].append(ops / (time.perf_counter() - t0))
            block += 1
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(1) == b"k"
    return rates


# ---------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mib", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--small-seconds", type=float, default=0.5)
    ap.add_argument("--file", help="file to send (default: a temporary file of --size-mib)")
    args = ap.parse_args()

    tmpdir = None
    if args.file:
        path = args.file
    else:
        tmpdir = tempfile.mkdtemp(prefix="zcopy-bench-")
        path = os.path.join(tmpdir, "data")
        with open(path, "wb") as out:
            for _ in range(args.size_mib):
                out.write(os.urandom(CHUNK))
    size = os.path.getsize(path)
    with open(path, "rb") as f:  # into the page cache
        while f.readinto(bytearray(CHUNK)):
            pass

    srv = socket.create_server(("127.0.0.1", 0), backlog=64)
    addr = srv.getsockname()
    child = subprocess.Popen(
        [sys.executable, __file__, "--receiver", str(srv.fileno())], pass_fds=[srv.fileno()]
    )
    srv.close()
    try:
        print(f"zcopy {zcopy.__version__}, Python {sys.version.split()[0]}, file {size / 2**20:.0f} MiB, "
              f"{args.rounds} interleaved rounds, receiver: splice to /dev/null + TCP_QUICKACK in another process",
              flush=True)
        names = list(SENDERS)
        gbps: dict[str, list[float]] = {n: [] for n in names}
        cpug: dict[str, list[float]] = {n: [] for n in names}
        with open(path, "rb") as f:
            for rnd in range(args.rounds):
                order = names[rnd % len(names):] + names[: rnd % len(names)]
                for n in order:
                    secs, cpus = one_bulk(addr, SENDERS[n], f, size)
                    gbps[n].append(size / secs / 1e9)
                    cpug[n].append(cpus / (size / 1e9))
                print(f"  round {rnd + 1}/{args.rounds} done", file=sys.stderr, flush=True)
        print()
        print(f"{'sender':28} {'GB/s':>7} {'CPU s/GB':>9} {'GB/s vs limit':>14} {'CPU vs limit':>13}"
              f" {'GB/s vs read/sendall':>21} {'CPU vs read/sendall':>20}")
        for n in names:
            r_gb = statistics.median(a / b for a, b in zip(gbps[n], gbps[LIMIT]))
            r_cpu = statistics.median(a / b for a, b in zip(cpug[n], cpug[LIMIT]))
            rs_gb = statistics.median(a / b for a, b in zip(gbps[n], gbps["read/sendall loop"]))
            rs_cpu = statistics.median(a / b for a, b in zip(cpug[n], cpug["read/sendall loop"]))
            print(f"{n:28} {statistics.median(gbps[n]):7.2f} {statistics.median(cpug[n]):9.3f}"
                  f" {r_gb:13.3f}x {r_cpu:12.3f}x {rs_gb:20.3f}x {rs_cpu:19.3f}x")
        zs = [a / b for a, b in zip(gbps["zcopy.transfer"], gbps["socket.sendfile"])]
        print(f"zcopy.transfer vs socket.sendfile, GB/s: {statistics.median(zs):.3f}x (median of per-round ratios)")

        print()
        snames = list(SMALL_SENDERS)
        ops: dict[str, list[float]] = {n: [] for n in snames}
        with open(path, "rb") as f:
            for _ in range(args.rounds):
                for n, r in small_round(addr, f.fileno(), size, args.small_seconds).items():
                    ops[n].extend(r)
        print(f"{'4 KiB transfers':28} {'ops/s':>10} {'vs limit':>9}   ({len(ops[snames[0]])} paired blocks of 2000 ops)")
        lim = snames[0]
        for n in snames:
            ratio = statistics.median(a / b for a, b in zip(ops[n], ops[lim]))
            print(f"{n:28} {statistics.median(ops[n]):10.0f} {ratio:8.3f}x")
    finally:
        child.kill()
        child.wait()
        if tmpdir:
            shutil.rmtree(tmpdir, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--receiver":
        receiver(int(sys.argv[2]))
    else:
        main()
