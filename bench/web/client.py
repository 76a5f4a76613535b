#!/usr/bin/env python3
"""Load client for bench/web: HTTP/1.1 keep-alive GETs of one path on N connections, for a fixed
time, in one thread with non-blocking sockets (so the client, not a thread pool, sets the pace).

Bodies are read into one reused buffer; the first body of every connection is kept and compared
byte for byte with the expected file when it completes. Prints one JSON line: requests, bytes, seconds.

    python client.py PORT PATH CONNS SECONDS EXPECTED_FILE [CPU]
"""

from __future__ import annotations

import json
import os
import selectors
import socket
import sys
import time

BUF = bytearray(4 << 20)
VIEW = memoryview(BUF)


class Conn:
    def __init__(self, port: int, req: bytes, expected: bytes) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setblocking(False)
        self.req, self.expected = req, expected
        self.head = bytearray()
        self.left = -1  # body bytes still to read; -1 while reading headers
        self.first: bytearray | None = bytearray()
        self.done = 0
        self.sock.send(req)

    def on_readable(self) -> int:
        """Reads what is there; returns the body bytes consumed."""
        got = 0
        while True:
            if self.left < 0:
                try:
                    data = self.sock.recv(65536)
                except BlockingIOError:
                    return got
                if not data:
                    raise ConnectionError("server closed the connection")
                self.head += data
                end = self.head.find(b"\r\n\r\n")
                if end < 0:
                    continue
                head = bytes(self.head[:end]).lower()
                if not head.startswith(b"http/1.1 200"):
                    raise AssertionError(head[:200])
                length = int(head.split(b"content-length:")[1].split(b"\r\n")[0])
                rest = self.head[end + 4 :]
                self.head = bytearray()
                self.left = length - len(rest)
                got += len(rest)
                if self.first is not None:
                    self.first += rest
            else:
                try:
                    n = self.sock.recv_into(VIEW[: min(self.left, len(BUF))] if self.left else VIEW[:0])
                except BlockingIOError:
                    return got
                if self.left and not n:
                    raise ConnectionError("server closed mid-body")
                if self.first is not None:
                    self.first += VIEW[:n]
                self.left -= n
                got += n
            if self.left == 0:
                if self.first is not None:
                    if bytes(self.first) != self.expected:
                        raise AssertionError("first body differs from the file")
                    self.first = None
                self.done += 1
                self.left = -1
                self.sock.send(self.req)


def main() -> None:
    port, path, conns, seconds, expected_path = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
    if len(sys.argv) > 6:
        os.sched_setaffinity(0, {int(sys.argv[6])})
    with open(expected_path, "rb") as f:
        expected = f.read()
    req = f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()
    sel = selectors.DefaultSelector()
    cs = [Conn(port, req, expected) for _ in range(conns)]
    for c in cs:
        sel.register(c.sock, selectors.EVENT_READ, c)
    total = 0
    start = time.monotonic()
    end = start + seconds
    # The window is at least `seconds` and lasts until one response completed (a 64 MiB body on
    # 16 connections can outlast a short window); rates use the real elapsed time.
    while (now := time.monotonic()) < end or all(c.done == 0 for c in cs):
        if now > start + 120:
            raise TimeoutError("no response completed in 120 s")
        for key, _ in sel.select(max(end - now, 0.05)):
            total += key.data.on_readable()
    elapsed = time.monotonic() - start
    print(json.dumps({"requests": sum(c.done for c in cs), "bytes": total, "seconds": elapsed}))


if __name__ == "__main__":
    main()
