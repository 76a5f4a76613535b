#!/usr/bin/env python3
"""N concurrent connections through `zcopy relay` at once: every byte echoed back exactly,
and what the relay process holds while they are all open.

Run by hand (not part of the tests), after `cargo build --release -p zcopy-cli`:

    python3 bench/relay/many.py [--conns 1000] [--kib 256] [--zcopy target/release/zcopy]

An echo server (one thread, selectors) is the upstream; N client threads connect through the
relay, each sends --kib KiB of its own pattern while reading the echo, and checks it byte for
byte. While all N are connected, the relay's resident memory and descriptors are read from
/proc; the script prints them with the wall time.
"""

from __future__ import annotations

import argparse
import os
import selectors
import socket
import subprocess
import sys
import threading
import time


def echo_server(srv: socket.socket) -> None:
    sel = selectors.DefaultSelector()
    srv.setblocking(False)
    sel.register(srv, selectors.EVENT_READ)
    pending: dict[socket.socket, bytearray] = {}
    while True:
        for key, ev in sel.select():
            s = key.fileobj
            assert isinstance(s, socket.socket)
            if s is srv:
                c, _ = srv.accept()
                c.setblocking(False)
                pending[c] = bytearray()
                sel.register(c, selectors.EVENT_READ)
                continue
            if ev & selectors.EVENT_READ:
                try:
                    data = s.recv(1 << 16)
                except ConnectionError:
                    data = b""
                if not data:
                    sel.unregister(s)
                    s.close()
                    pending.pop(s, None)
                    continue
                pending[s] += data
            buf = pending.get(s)
            if buf:
                try:
                    n = s.send(buf)
                except BlockingIOError:
                    n = 0
                del buf[:n]
                sel.modify(s, selectors.EVENT_READ | (selectors.EVENT_WRITE if buf else 0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--conns", type=int, default=1000)
    ap.add_argument("--kib", type=int, default=256)
    ap.add_argument("--zcopy", default="target/release/zcopy")
    args = ap.parse_args()
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    up = socket.create_server(("127.0.0.1", 0), backlog=4096)
    threading.Thread(target=echo_server, args=(up,), daemon=True).start()
    relay = subprocess.Popen([args.zcopy, "relay", "-q", "--max-conns", str(args.conns), "127.0.0.1:0",
                              f"127.0.0.1:{up.getsockname()[1]}"], stderr=subprocess.PIPE, text=True)
    assert relay.stderr is not None
    line = relay.stderr.readline()
    port = int(line.rsplit(":", 2)[-2].split(",")[0]) if "listening on" in line else None
    assert port, line
    size = args.kib << 10
    barrier = threading.Barrier(args.conns + 1)
    done = threading.Barrier(args.conns + 1)
    errors: list[str] = []

    def client(i: int) -> None:
        try:
            data = bytes((i + k) % 251 for k in range(size))
            s = socket.create_connection(("127.0.0.1", port))
            barrier.wait()
            sender = threading.Thread(target=s.sendall, args=(data,))
            sender.start()
            got = bytearray()
            while len(got) < size:
                b = s.recv(1 << 16)
                if not b:
                    break
                got += b
            sender.join()
            if bytes(got) != data:
                errors.append(f"conn {i}: {len(got)} bytes, not the same")
            done.wait()
            s.close()
        except Exception as e:  # reported below
            errors.append(f"conn {i}: {e!r}")
            for b in (barrier, done):
                b.abort()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.conns)]
    for t in threads:
        t.start()
    t0 = time.perf_counter()
    barrier.wait()
    done.wait()
    secs = time.perf_counter() - t0
    status = open(f"/proc/{relay.pid}/status").read()
    rss = next(l for l in status.splitlines() if l.startswith("VmRSS")).split()[1]
    fds = len(os.listdir(f"/proc/{relay.pid}/fd"))
    for t in threads:
        t.join()
    relay.wait(timeout=60)
    print(f"{args.conns} connections x {args.kib} KiB each way through zcopy relay: {secs:.2f} s, "
          f"{2 * args.conns * size / secs / 1e9:.2f} GB/s both ways; relay RSS {int(rss) / 1024:.0f} MiB, "
          f"{fds} descriptors with all open; errors: {len(errors)}")
    for e in errors[:5]:
        print("  ", e)
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
