"""Real web servers for the tests, as processes of their own, and raw HTTP/1.1 on sockets.

A server gets a listening socket bound here on 127.0.0.1 (``--fd``), so a client can connect
at once (the backlog holds it until the server accepts) and no port is guessed. Every wait is
bounded by LIMIT.
"""

from __future__ import annotations

import io
import json
import os
import select
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from conftest import LIMIT

HERE = Path(__file__).resolve().parent


class Server:
    """One server process; ``kind`` is uvicorn-httptools, uvicorn-h11, uvicorn-stock or aiohttp."""

    def __init__(self, kind: str, loop: str, root: Path, app: str = "starlette_app", tls: tuple[str, str] | None = None):
        self.kind, self.loop, self.tls = kind, loop, tls
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self.listener.getsockname()[1]
        fd = self.listener.fileno()
        if kind == "aiohttp":
            cmd = [sys.executable, str(HERE / "web_apps.py"), "aiohttp", str(fd), loop, *(tls or ())]
        else:
            http = {
                "uvicorn-httptools": "zcopy.uvicorn:HttpToolsProtocol",
                "uvicorn-h11": "zcopy.uvicorn:H11Protocol",
                "uvicorn-stock": "httptools",
            }[kind]
            cmd = [sys.executable, "-m", "uvicorn", f"web_apps:{app}", "--fd", str(fd), "--http", http]
            cmd += ["--loop", loop, "--app-dir", str(HERE), "--log-level", "warning", "--no-access-log"]
            if tls:
                cmd += ["--ssl-certfile", tls[0], "--ssl-keyfile", tls[1]]
        self.log_path = root / f"server-{kind}-{loop}-{self.port}.log"
        self.log = open(self.log_path, "wb")
        env = dict(os.environ, ZC_WEB_DIR=str(root), PYTHONPATH=str(HERE))
        self.proc = subprocess.Popen(cmd, pass_fds=[fd], stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.base = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"

    def stderr(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stats(self) -> dict[str, Any]:
        """GET /stats on a connection of its own (plain HTTP only)."""
        with connect(self.port) as s:
            s.sendall(b"GET /stats HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            status, _, body = read_response(s.makefile("rb"))
        assert status == 200, body
        result: dict[str, Any] = json.loads(body)
        return result

    def wait_until(self, what: str, predicate: Any) -> dict[str, Any]:
        """Poll /stats until predicate(stats) holds; fail after LIMIT (never a timed assertion
        on speed: only a bound on a hang)."""
        deadline = time.monotonic() + LIMIT
        while True:
            st = self.stats()
            if predicate(st):
                return st
            if time.monotonic() > deadline:
                raise AssertionError(f"server never reached: {what}; last stats {st}")
            time.sleep(0.05)

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(LIMIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(LIMIT)
        self.listener.close()
        self.log.close()


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=LIMIT)


def request(path: str, method: str = "GET", close: bool = False) -> bytes:
    extra = "Connection: close\r\n" if close else ""
    return f"{method} {path} HTTP/1.1\r\nHost: t\r\n{extra}\r\n".encode()


def read_response(f: io.BufferedReader, head: bool = False) -> tuple[int, dict[str, str], bytes]:
    """One response from f: status, lower-cased headers, body (Content-Length or chunked)."""
    status_line = f.readline()
    if not status_line:
        raise ConnectionError("connection closed before a response")
    status = int(status_line.split()[1])
    headers: dict[str, str] = {}
    while (line := f.readline()) not in (b"\r\n", b""):
        k, _, v = line.decode("latin-1").partition(":")
        headers[k.strip().lower()] = v.strip()
    if head or status in (204, 304):
        return status, headers, b""
    if headers.get("transfer-encoding") == "chunked":
        body = bytearray()
        while True:
            n = int(f.readline().split(b";")[0], 16)
            if n == 0:
                f.readline()
                return status, headers, bytes(body)
            body += f.read(n)
            f.readline()
    n = int(headers["content-length"])
    body_bytes = f.read(n)
    if len(body_bytes) != n:
        raise ConnectionError(f"body cut short: {len(body_bytes)} of {n} bytes")
    return status, headers, body_bytes


def rss_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def wait_readable(sock: socket.socket) -> None:
    if not select.select([sock], [], [], LIMIT)[0]:
        raise TimeoutError("nothing arrived")


def make_cert(root: Path) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 (openssl)."""
    cert, key = root / "cert.pem", root / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=LIMIT,
    )  # fmt: skip
    return str(cert), str(key)


class RecordingProxy:
    """A TCP relay between a client and the server that keeps every byte the server sent: what
    an eavesdropper on the wire sees."""

    def __init__(self, port: int) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(LIMIT)
        self.port = self.listener.getsockname()[1]
        self.target = port
        self.wire = bytearray()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self._relay()
        except OSError:
            pass  # either side went away (a reset ends the relay, as it would end the connection)

    def _relay(self) -> None:
        client, _ = self.listener.accept()
        upstream = socket.create_connection(("127.0.0.1", self.target), timeout=LIMIT)
        with client, upstream:
            socks = [client, upstream]
            while True:
                ready = select.select(socks, [], [], LIMIT)[0]
                if not ready:
                    return
                for s in ready:
                    data = s.recv(1 << 16)
                    if not data:
                        return
                    if s is upstream:
                        self.wire += data
                        client.sendall(data)
                    else:
                        upstream.sendall(data)

    def tls_client(self) -> ssl.SSLSocket:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=LIMIT)
        return ctx.wrap_socket(raw, server_hostname="127.0.0.1")

    def close(self) -> None:
        self.thread.join(LIMIT)
        self.listener.close()
