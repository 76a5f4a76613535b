#!/usr/bin/env python3
"""`zcopy relay` against a read/write relay written in C (64 KiB buffers, one thread per
connection, bench/relay/rw_relay.c): GB/s, relay CPU seconds per GB and syscalls per GB, for 1
and 256 concurrent connections pushing data through, side by side in one run.

Run by hand (not part of the tests), from the project root after
`cargo build --release -p zcopy-cli`:

    python3 bench/relay/bench_relay.py [--rounds 5] [--mib-total 1024]

Both relays run at once on their own ports in front of the same sink (another process that
splices every connection through a 1 MiB pipe into /dev/null). A client process pushes --mib-total MiB per
measurement, split over the connections, with sendfile from a cached file, then half-closes and
waits for the relay to close. Rounds alternate the relays; the table shows medians and the
median of per-round ratios zcopy / C. CPU is the relay process's (from /proc/PID/stat);
syscalls are what each relay counts (zcopy's own report, the C relay's counter).
"""

from __future__ import annotations

import argparse
import fcntl
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TICK = os.sysconf("SC_CLK_TCK")
FILE = 64 << 20


def sink(port_out: int) -> None:
    srv = socket.create_server(("127.0.0.1", 0), backlog=4096)
    os.write(port_out, f"{srv.getsockname()[1]}\n".encode())

    def drain(c: socket.socket) -> None:
        null = os.open(os.devnull, os.O_WRONLY)
        r, w = os.pipe()
        # A 1 MiB pipe: with the default 64 KiB (16 slots) the sink itself was the bottleneck
        # at 256 connections (1.1 GB/s for both relays, 1.7 GB/s with this).
        fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, 1 << 20)
        while os.splice(c.fileno(), w, 1 << 20) > 0:
            os.splice(r, null, 1 << 20)
        for fd in (r, w, null):
            os.close(fd)
        c.close()

    while True:
        c, _ = srv.accept()
        threading.Thread(target=drain, args=(c,), daemon=True).start()


def cpu_of(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def push(port: int, conns: int, total: int, fd: int) -> float:
    """Pushes `total` bytes over `conns` connections through the relay on `port`; wall seconds."""
    each = total // conns
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(conns)]
    go = threading.Barrier(conns + 1)

    def one(s: socket.socket) -> None:
        go.wait()
        sent = 0
        while sent < each:
            off = sent % FILE
            sent += os.sendfile(s.fileno(), fd, off, min(each - sent, FILE - off))
        s.shutdown(socket.SHUT_WR)
        while s.recv(1 << 16):
            pass
        s.close()

    failed: list[BaseException] = []

    def guarded(s: socket.socket) -> None:
        try:
            one(s)
        except OSError as e:
            failed.append(e)

    threads = [threading.Thread(target=guarded, args=(s,)) for s in socks]
    for t in threads:
        t.start()
    t0 = time.perf_counter()
    go.wait()
    for t in threads:
        t.join()
    if failed:
        raise RuntimeError(f"{len(failed)} of {conns} connections failed: {failed[0]!r}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--mib-total", type=int, default=1024)
    ap.add_argument("--counts", default="1,256")
    ap.add_argument("--zcopy", default="target/release/zcopy")
    args = ap.parse_args()
    import resource

    resource.setrlimit(resource.RLIMIT_NOFILE, resource.getrlimit(resource.RLIMIT_NOFILE)[1:] * 2)
    rw = os.path.join(tempfile.mkdtemp(prefix="zcopy-bench-relay-"), "rw_relay")
    subprocess.check_call(["cc", "-O2", "-pthread", os.path.join(HERE, "rw_relay.c"), "-o", rw])
    r, w = os.pipe()
    sink_proc = subprocess.Popen([sys.executable, __file__, "--sink", str(w)], pass_fds=[w])
    sink_port = int(os.read(r, 64).decode().strip())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        rw_port = s.getsockname()[1]
    crelay = subprocess.Popen([rw, str(rw_port), str(sink_port)], stderr=subprocess.PIPE, text=True)
    assert crelay.stderr is not None and crelay.stderr.readline().strip() == "listening"
    zlog = tempfile.TemporaryFile(mode="w+")
    zrelay = subprocess.Popen([args.zcopy, "relay", "127.0.0.1:0", f"127.0.0.1:{sink_port}"], stderr=zlog, text=True)
    zport = None
    for _ in range(100):
        zlog.seek(0)
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", zlog.read())
        if m:
            zport = int(m.group(1))
            break
        time.sleep(0.05)
    assert zport
    src = os.path.join(os.path.dirname(rw), "data")
    with open(src, "wb") as f:
        f.write(os.urandom(FILE))
    fd = os.open(src, os.O_RDONLY)
    while os.read(fd, 1 << 20):
        pass
    total = args.mib_total << 20
    try:
        print(f"relays: zcopy relay vs C read/write (64 KiB), {args.mib_total} MiB per measurement, "
              f"{args.rounds} rounds", flush=True)
        print(f"{'conns':>6} {'relay':8} {'GB/s':>6} {'CPU s/GB':>9} {'GB/s ratio':>11} {'CPU ratio':>10}")
        zsys_total = 0
        zbytes_total = 0
        for conns in [int(c) for c in args.counts.split(",")]:
            res: dict[str, list[tuple[float, float]]] = {"zcopy": [], "C rw": []}
            for rnd in range(args.rounds):
                order = [("zcopy", zport, zrelay.pid), ("C rw", rw_port, crelay.pid)]
                for name, port, pid in (order if rnd % 2 == 0 else order[::-1]):
                    c0 = cpu_of(pid)
                    secs = push(port, conns, total, fd)
                    time.sleep(0.2)  # the relay's last thread-exit accounting
                    cpus = cpu_of(pid) - c0
                    res[name].append((total / secs / 1e9, cpus / (total / 1e9)))
                    if name == "zcopy":
                        zbytes_total += total
            g = statistics.median(a[0] / b[0] for a, b in zip(res["zcopy"], res["C rw"]))
            c = statistics.median(a[1] / b[1] for a, b in zip(res["zcopy"], res["C rw"]))
            for name in ("zcopy", "C rw"):
                gb = statistics.median(x[0] for x in res[name])
                cpu = statistics.median(x[1] for x in res[name])
                extra = f"{g:10.3f}x {c:9.3f}x" if name == "zcopy" else ""
                print(f"{conns:6} {name:8} {gb:6.2f} {cpu:9.3f} {extra}", flush=True)
        zlog.seek(0)
        log = zlog.read()
        zsys_total = sum(int(x) for x in re.findall(r"(\d+) syscalls", log))
        problems = [l for l in log.splitlines() if "listening" not in l and "syscalls" not in l]
        print(f"zcopy relay errors: {len(problems)}", *problems[:5], sep="\n  ")
        crelay.terminate()
        _, err = crelay.communicate(timeout=10)
        m = re.search(r"syscalls (\d+)", err)
        csys = int(m.group(1)) if m else 0
        gbs = zbytes_total / 1e9
        print(f"syscalls per GB: zcopy relay {zsys_total / gbs:,.0f}, C read/write relay {csys / gbs:,.0f}")
    finally:
        for p in (zrelay, crelay, sink_proc):
            p.kill()
            p.wait()
        os.close(fd)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--sink":
        sink(int(sys.argv[2]))
    else:
        main()
