#!/usr/bin/env python3
"""Small HTTP-style responses (a 200-byte header + a 4 KiB file range) over loopback TCP:
``sock.sendall(header)`` + ``os.sendfile`` against one ``zcopy.send_parts`` call.

Run by hand (not part of the tests), with zcopy installed (`pip install ./bindings-python`):

    python bench/python/bench_responses.py [--rounds 7] [--seconds 0.5]

Two workloads, each on one connection per round where the two senders alternate in blocks
(so every block of one has a neighbour of the other under the same conditions; the ratio is
the median of the paired per-block ratios), TCP_NODELAY on as servers set it:

- request/response (keep-alive): a client in another process sends a 1-byte request and reads
  the whole response before the next; the server answers each. This is what a server sees,
  and where a response split into two segments costs the client a second wake-up.
- streaming: responses back to back to a client that drains (pipelining); the kernel's
  autocorking already merges small sends here, so segments per response fall below 1.

Segments per response come from TCP_INFO tcpi_segs_out on the server's socket.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import zcopy

BODY = 4096
HEADER = (b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 4096\r\n"
          b"Last-Modified: Thu, 03 Dec 2026 08:00:00 GMT\r\nETag: \"5f3a-1000\"\r\nX-Pad: ")
HEADER += b"p" * (196 - len(HEADER)) + b"\r\n\r\n"
RESPONSE = len(HEADER) + BODY
FILE_SIZE = 64 << 20


def client(port: int, mode: str) -> None:
    """The other process: requests and reads whole responses, or drains."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = bytearray(RESPONSE)
    view = memoryview(buf)
    try:
        if mode == "drain":
            while sock.recv_into(buf):
                pass
            return
        while True:
            sock.sendall(b"r")
            got = 0
            while got < RESPONSE:
                n = sock.recv_into(view[got:])
                if n == 0:
                    return
                got += n
    except OSError:
        return  # the server closed (a reset when a request was still unread): the round is over


def sendall_sendfile(sock: socket.socket, fd: int, off: int) -> None:
    sock.sendall(HEADER)
    os.sendfile(sock.fileno(), fd, off, BODY)


def send_parts(sock: socket.socket, fd: int, off: int) -> None:
    zcopy.send_parts(sock, [HEADER, (fd, off, BODY)])


SENDERS: dict[str, Callable[[socket.socket, int, int], None]] = {
    "sendall(header) + os.sendfile": sendall_sendfile,
    "zcopy.send_parts": send_parts,
}


def segs_out(sock: socket.socket) -> int:
    """TCP segments sent so far (tcpi_segs_out, at offset 136 of the kernel's struct tcp_info)."""
    return int.from_bytes(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)[136:140], "little")


def one_round(srv: socket.socket, fd: int, mode: str, seconds: float,
              ops: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    child = subprocess.Popen([sys.executable, __file__, "--client", str(srv.getsockname()[1]), mode])
    conn, _ = srv.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    rates: dict[str, list[float]] = {n: [] for n in SENDERS}
    segs: dict[str, list[float]] = {n: [] for n in SENDERS}
    request = mode == "request"
    off = 0

    def block(name: str, count: int) -> None:
        nonlocal off
        fn = SENDERS[name]
        for _ in range(count):
            if request:
                conn.recv(1)
            fn(conn, fd, off)
            off = (off + BODY) % (FILE_SIZE - BODY)

    try:
        for n in SENDERS:
            block(n, 200)  # warm up
        t_end = time.perf_counter() + seconds
        k = 0
        while time.perf_counter() < t_end:
            names = list(SENDERS) if k % 2 == 0 else list(SENDERS)[::-1]
            for n in names:
                s0, t0 = segs_out(conn), time.perf_counter()
                block(n, ops)
                rates[n].append(ops / (time.perf_counter() - t0))
                segs[n].append((segs_out(conn) - s0) / ops)
            k += 1
    finally:
        conn.close()
        child.wait()
    return rates, segs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--seconds", type=float, default=0.5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="zcopy-bench-") as d:
        path = os.path.join(d, "data")
        with open(path, "wb") as out:
            for _ in range(FILE_SIZE >> 20):
                out.write(os.urandom(1 << 20))
        fd = os.open(path, os.O_RDONLY)
        srv = socket.create_server(("127.0.0.1", 0))
        print(f"zcopy {zcopy.__version__}, Python {sys.version.split()[0]}: {len(HEADER)} B header + "
              f"{BODY} B file range per response, {args.rounds} rounds, client in another process")
        for mode, ops, title in (("request", 500, "request/response (keep-alive)"),
                                 ("drain", 2000, "streaming (back to back)")):
            rates: dict[str, list[float]] = {n: [] for n in SENDERS}
            segs: dict[str, list[float]] = {n: [] for n in SENDERS}
            for _ in range(args.rounds):
                r, s = one_round(srv, fd, mode, args.seconds, ops)
                for n in SENDERS:
                    rates[n] += r[n]
                    segs[n] += s[n]
            first = list(SENDERS)[0]
            print()
            print(f"{title:32} {'responses/s':>12} {'vs first':>9} {'segments/resp':>14}"
                  f"   ({len(rates[first])} paired blocks of {ops})")
            for n in SENDERS:
                ratio = statistics.median(a / b for a, b in zip(rates[n], rates[first]))
                print(f"{n:32} {statistics.median(rates[n]):12.0f} {ratio:8.3f}x {statistics.median(segs[n]):14.2f}")
        os.close(fd)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--client":
        client(int(sys.argv[2]), sys.argv[3])
    else:
        main()
