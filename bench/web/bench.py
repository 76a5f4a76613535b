#!/usr/bin/env python3
"""Python web servers sending files: stock against zcopy, with the limit and a Rust peer.

Run by hand (not part of the tests), in a venv with zcopy[web] and
bindings-python/requirements-web.txt plus granian installed:

    python bench/web/bench.py [--rounds 3] [--seconds 2] [--server-cpu 0] [--client-cpu 1]

Every server is a process of its own pinned to --server-cpu (granian's worker included); the load
client (client.py) is another process pinned to --client-cpu: HTTP/1.1 keep-alive, bodies read
into a reused buffer, the first body of each connection checked byte for byte. Files of 1 MiB
and 64 MiB are read once first (page cache). Cells (size x connections) are measured in
interleaved rounds, servers in a rotated order each round. Reported: median req/s, GB/s,
server CPU seconds per GB (utime + stime of the server's process tree from /proc), and the
median of per-round ratios to stock uvicorn (paired, same round).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TICK = os.sysconf("SC_CLK_TCK")
SIZES = {"1m.bin": 1 << 20, "64m.bin": 64 << 20}
CONNS = [1, 16]


def servers(py: str) -> dict[str, list[str]]:
    uv = [py, "-m", "uvicorn", "servers:starlette_app", "--app-dir", str(HERE), "--loop", "uvloop", "--log-level", "warning", "--no-access-log", "--fd", "{fd}"]
    return {
        "uvicorn+uvloop (stock)": [*uv, "--http", "httptools"],
        "uvicorn+uvloop zcopy": [*uv, "--http", "zcopy.uvicorn:HttpToolsProtocol"],
        "aiohttp uvloop (stock)": [py, str(HERE / "servers.py"), "aiohttp", "{fd}", "uvloop"],
        "aiohttp uvloop zcopy": [py, str(HERE / "servers.py"), "aiohttp", "{fd}", "zcopy"],
        "aiohttp asyncio": [py, str(HERE / "servers.py"), "aiohttp", "{fd}", "asyncio"],
        "granian asgi uvloop": [shutil.which("granian") or str(Path(py).parent / "granian"), "--interface", "asgi", "--loop", "uvloop", "--workers", "1",
                                "--log-level", "warning", "--no-ws", "--host", "127.0.0.1", "--port", "{port}", "servers:starlette_app"],
        "bare asyncio + os.sendfile": [py, str(HERE / "servers.py"), "bare", "{fd}"],
    }  # fmt: skip


def tree_cpu(pid: int) -> float:
    """CPU seconds of pid and all its descendants."""
    total = 0.0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / TICK
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def start(name: str, cmd: list[str], cpu: int, root: Path) -> tuple[subprocess.Popen[bytes], int, socket.socket | None]:
    env = dict(os.environ, ZC_BENCH_DIR=str(root), PYTHONPATH=str(HERE))
    if "{fd}" in cmd:
        lst = socket.create_server(("127.0.0.1", 0), backlog=256)
        port, fd = lst.getsockname()[1], lst.fileno()
        argv = [a.replace("{fd}", str(fd)) for a in cmd]
        proc = subprocess.Popen(["taskset", "-c", str(cpu), *argv], pass_fds=[fd], env=env, stderr=subprocess.DEVNULL)
        return proc, port, lst
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    argv = [a.replace("{port}", str(port)) for a in cmd]
    proc = subprocess.Popen(["taskset", "-c", str(cpu), *argv], env=env, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # granian binds its own port: wait until it listens
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    return proc, port, None


def client(cmd: list[str], timeout: float) -> bytes:
    r = subprocess.run(cmd, capture_output=True, timeout=timeout)
    if r.returncode:
        raise SystemExit(f"client failed: {' '.join(cmd)}\n{r.stderr.decode(errors='replace')}")
    return r.stdout


def measure(py: str, pid: int, port: int, name: str, conns: int, seconds: float, cpu: int, root: Path) -> dict[str, float]:
    cpu0 = tree_cpu(pid)
    out = client([py, str(HERE / "client.py"), str(port), f"/file/{name}", str(conns), str(seconds), str(root / name), str(cpu)], seconds + 60)
    cpu1 = tree_cpu(pid)
    r = json.loads(out)
    gb = r["bytes"] / 1e9
    return {"rps": r["requests"] / r["seconds"], "gbps": gb / r["seconds"], "cpu_gb": (cpu1 - cpu0) / gb if gb else float("nan")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--server-cpu", type=int, default=0)
    ap.add_argument("--client-cpu", type=int, default=1)
    ap.add_argument("--only", help="comma-separated server names to run (default all)")
    a = ap.parse_args()
    py = sys.executable
    root = Path(tempfile.mkdtemp(prefix="zcopy-web-bench-"))
    for name, size in SIZES.items():
        (root / name).write_bytes(os.urandom(size))
        (root / name).read_bytes()  # cached
    table = servers(py)
    if a.only:
        table = {k: v for k, v in table.items() if k in a.only.split(",")}
    running = {k: start(k, v, a.server_cpu, root) for k, v in table.items()}
    try:
        for _, port, _ in running.values():  # warm up every server once
            client([py, str(HERE / "client.py"), str(port), "/file/1m.bin", "2", "0.3", str(root / "1m.bin")], 60)
        results: dict[tuple[str, str, int], list[dict[str, float]]] = {}
        names = list(running)
        for rnd in range(a.rounds):
            for size in SIZES:
                for conns in CONNS:
                    order = names[rnd % len(names) :] + names[: rnd % len(names)]
                    for srv in order:
                        proc, port, _ = running[srv]
                        m = measure(py, proc.pid, port, size, conns, a.seconds, a.client_cpu, root)
                        results.setdefault((srv, size, conns), []).append(m)
            print(f"round {rnd + 1}/{a.rounds} done", file=sys.stderr)
        base = "uvicorn+uvloop (stock)"
        print(f"| server | file | conns | req/s | GB/s | server CPU s/GB | req/s vs stock uvicorn |")
        print("|---|---|---|---|---|---|---|")
        for size in SIZES:
            for conns in CONNS:
                for srv in names:
                    ms = results[(srv, size, conns)]
                    med = {k: statistics.median(m[k] for m in ms) for k in ms[0]}
                    ratio = ""
                    if (base, size, conns) in results:
                        ratio = "%.2fx" % statistics.median(m["rps"] / b["rps"] for m, b in zip(ms, results[(base, size, conns)]))
                    label = size.replace(".bin", "").replace("m", " MiB")
                    print(f"| {srv} | {label} | {conns} | {med['rps']:.0f} | {med['gbps']:.2f} | {med['cpu_gb']:.3f} | {ratio} |")
    finally:
        for proc, _, lst in running.values():
            proc.terminate()
        for proc, _, lst in running.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
            if lst is not None:
                lst.close()
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
