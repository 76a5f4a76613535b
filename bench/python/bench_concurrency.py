#!/usr/bin/env python3
"""Many concurrent file -> TCP transfers in one process: Auto (splice through the engine's
budgeted pipes, or sendfile when they run out) against sendfile only.

Run by hand (not part of the tests), with zcopy installed (`pip install ./bindings-python`):

    python bench/python/bench_concurrency.py [--counts 1,64,1000] [--size-mib 8] [--rounds 3]

As an unprivileged user (the per-user pipe quota binds only them; root has CAP_SYS_RESOURCE),
with a Python that user can run and the installed package on its path, e.g.:

    PYTHONPATH=<venv>/lib/python3.11/site-packages setpriv --reuid=65534 --regid=65534 \
        --clear-groups /usr/bin/python3 bench/python/bench_concurrency.py

For each count N, N threads each send an 8 MiB range of one cached file to their own loopback
connection with ``zcopy.transfer`` (the GIL is released while the engine works); N receiver
threads in another process drain with splice into /dev/null. Rounds alternate the two methods;
the table shows median aggregate GB/s, CPU seconds per GB of the sending process (getrusage),
the median of per-round GB/s ratios Auto / sendfile, and how many of Auto's transfers fell back
from splice for lack of a pipe.
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
import threading
import time

import zcopy


def receiver(listen_fd: int) -> None:
    """Accepts forever; one thread per connection drains it into /dev/null with splice."""
    srv = socket.socket(fileno=listen_fd)

    def drain(conn: socket.socket) -> None:
        null = os.open(os.devnull, os.O_WRONLY)
        r, w = os.pipe()
        try:
            while os.splice(conn.fileno(), w, 1 << 20) > 0:
                os.splice(r, null, 1 << 20)
            conn.sendall(b"k")
        finally:
            for fd in (r, w, null):
                os.close(fd)
            conn.close()

    while True:
        conn, _ = srv.accept()
        threading.Thread(target=drain, args=(conn,), daemon=True).start()


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def one(addr: tuple[str, int], fd: int, n: int, size: int, method: str) -> tuple[float, float, int]:
    """N concurrent transfers; returns (GB/s, CPU s/GB, transfers that fell back from splice)."""
    socks = [socket.create_connection(addr) for _ in range(n)]
    file_size = os.fstat(fd).st_size
    fell_back = [0] * n
    go = threading.Barrier(n + 1)

    def work(i: int) -> None:
        go.wait()
        rep = zcopy.transfer(fd, socks[i], offset=(i * size) % (file_size - size + 1), count=size,
                             method=method)
        assert rep.bytes == size, rep
        fell_back[i] = int(rep.fallbacks > 0)  # here only for lack of a pipe
        socks[i].shutdown(socket.SHUT_WR)
        assert socks[i].recv(1) == b"k"

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    c0, t0 = cpu(), time.perf_counter()
    go.wait()
    for t in threads:
        t.join()
    secs, cpus = time.perf_counter() - t0, cpu() - c0
    for s in socks:
        s.close()
    gb = n * size / 1e9
    return gb / secs, cpus / gb, sum(fell_back)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--counts", default="1,64,1000")
    ap.add_argument("--size-mib", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    size = args.size_mib << 20
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    tmpdir = tempfile.mkdtemp(prefix="zcopy-bench-conc-")
    path = os.path.join(tmpdir, "data")
    file_size = max(256 << 20, size)
    with open(path, "wb") as f:
        chunk = os.urandom(1 << 20)
        for _ in range(file_size >> 20):
            f.write(chunk)
    fd = os.open(path, os.O_RDONLY)
    while os.read(fd, 1 << 20):
        pass
    srv = socket.create_server(("127.0.0.1", 0), backlog=4096)
    child = subprocess.Popen([sys.executable, __file__, "--receiver", str(srv.fileno())], pass_fds=[srv.fileno()])
    addr = srv.getsockname()
    srv.close()
    try:
        user = "root" if os.geteuid() == 0 else f"uid {os.geteuid()}"
        print(f"zcopy {zcopy.__version__}: {args.size_mib} MiB per transfer, {args.rounds} rounds, as {user}; "
              f"pipe-user-pages-soft {open('/proc/sys/fs/pipe-user-pages-soft').read().strip()}", flush=True)
        print(f"{'concurrent':>10} {'method':9} {'GB/s':>7} {'CPU s/GB':>9} {'auto/sendfile':>14} {'fell back':>10}")
        for n in counts:
            res: dict[str, list[tuple[float, float, int]]] = {"auto": [], "sendfile": []}
            for rnd in range(args.rounds):
                for m in (["auto", "sendfile"] if rnd % 2 == 0 else ["sendfile", "auto"]):
                    res[m].append(one(addr, fd, n, size, m))
            ratio = statistics.median(a[0] / s[0] for a, s in zip(res["auto"], res["sendfile"]))
            for m in ("auto", "sendfile"):
                g = statistics.median(r[0] for r in res[m])
                c = statistics.median(r[1] for r in res[m])
                fb = max(r[2] for r in res[m])
                extra = f"{ratio:13.3f}x" if m == "auto" else ""
                print(f"{n:10} {m:9} {g:7.2f} {c:9.3f} {extra:>14} {fb if m == 'auto' else '':>10}", flush=True)
    finally:
        child.kill()
        child.wait()
        os.close(fd)
        shutil.rmtree(tmpdir, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--receiver":
        receiver(int(sys.argv[2]))
    else:
        main()
