"""Benchmark: the gateway's front door under the issue's attacks, with its default limits.

Run: .venv/bin/python benchmarks/bench_front_door.py [--slow-conns 1100] [--header-mb 64]
     [--phases baseline,big_header,slowloris,session_ids]

Starts `moerun gateway` as a process (defaults: 64 KiB head limit, 10 s header timeout) and
reports, while a prober GETs /v1/models every 20 ms: the time until an oversized header is
answered 431 and the prober's worst latency meanwhile; how long trickling (slowloris)
connections stay open and how many probes fail meanwhile; and the gateway's resident memory
before and after 300 requests with 1 MB session ids.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _start(tmp: Path) -> tuple[subprocess.Popen[bytes], int]:
    cfg = {
        "backends": [
            {
                "name": "a",
                "kind": "self-hosted",
                "base_url": f"http://127.0.0.1:{_free_port()}/v1",
                "health_check": False,
            }
        ],
        "models": {"glm-5.1": ["a"]},
        "database_url": f"sqlite:///{tmp / 'usage.db'}",
        "server": {"access_log": False},
    }
    (tmp / "gw.yaml").write_text(yaml.safe_dump(cfg))
    port = _free_port()
    argv = [sys.executable, "-m", "moerun.cli", "gateway", "--config", str(tmp / "gw.yaml")]
    proc = subprocess.Popen([*argv, "--port", str(port)], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc, port
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the gateway did not start")


class Prober(threading.Thread):
    """GET /v1/models every 20 ms; latencies and failures."""

    def __init__(self, port: int) -> None:
        super().__init__()
        self.url = f"http://127.0.0.1:{port}/v1/models"
        self.stop = threading.Event()
        self.latencies_s: list[float] = []
        self.failures = 0

    def run(self) -> None:
        while not self.stop.is_set():
            t0 = time.monotonic()
            try:
                ok = httpx.get(self.url, timeout=2).status_code == 200
            except httpx.HTTPError:
                ok = False
            self.latencies_s.append(time.monotonic() - t0)
            self.failures += not ok
            time.sleep(0.02)

    def report(self) -> dict[str, Any]:
        lat = sorted(self.latencies_s)
        return {
            "probes": len(lat),
            "probe_failures": self.failures,
            "probe_p50_ms": round(lat[len(lat) // 2] * 1000, 1),
            "probe_max_ms": round(lat[-1] * 1000, 1),
        }


def big_header(port: int, mb: int) -> dict[str, Any]:
    """One request with an mb-megabyte header."""
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", port)) as s:
        try:
            s.sendall(b"GET /v1/models HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * (mb << 20))
            s.sendall(b"\r\n\r\n")
        except OSError:
            pass
        s.settimeout(10)
        line = s.recv(4096).split(b"\r\n", 1)[0].decode()
    return {"status_line": line, "answered_s": round(time.monotonic() - t0, 3)}


async def slowloris(port: int, num_conns: int) -> dict[str, Any]:
    """Connections that send a header line each second; seconds until each was closed."""

    async def one() -> float:
        t0 = time.monotonic()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n")
            for i in range(120):
                try:
                    data = await asyncio.wait_for(reader.read(1024), 1.0)
                except TimeoutError:
                    writer.write(b"x-%d: y\r\n" % i)
                    await writer.drain()
                    continue
                if not data or data.startswith(b"HTTP/1.1 408"):
                    break
            writer.close()
        except OSError:
            pass
        return time.monotonic() - t0

    held = sorted(await asyncio.gather(*(one() for _ in range(num_conns))))
    return {
        "connections": num_conns,
        "closed_after_p50_s": round(held[len(held) // 2], 2),
        "closed_after_max_s": round(held[-1], 2),
    }


def session_ids(port: int, proc: psutil.Process) -> dict[str, Any]:
    """300 requests with a 1 MB x-session-id; the gateway's RSS before and after."""
    before = proc.memory_info().rss
    statuses: dict[int, int] = {}
    with httpx.Client(timeout=10) as c:
        for _ in range(300):
            body = {"model": "glm-5.1", "messages": [{"role": "user", "content": "hi"}]}
            try:
                r = c.post(
                    f"http://127.0.0.1:{port}/v1/chat/completions",
                    json=body,
                    headers={"x-session-id": "s" * (1 << 20)},
                )
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            except httpx.HTTPError:
                statuses[0] = statuses.get(0, 0) + 1
    after = proc.memory_info().rss
    return {"statuses": statuses, "rss_growth_mb": round((after - before) / 2**20, 1)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--slow-conns", type=int, default=1100)
    p.add_argument("--header-mb", type=int, default=64)
    p.add_argument("--phases", default="baseline,big_header,slowloris,session_ids")
    a = p.parse_args()
    phases = a.phases.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        proc, port = _start(Path(tmp))
        ps = psutil.Process(proc.pid)
        try:
            results: dict[str, Any] = {}
            for name, run in (
                ("baseline", lambda: time.sleep(1.0) or {}),
                ("big_header", lambda: big_header(port, a.header_mb)),
                ("slowloris", lambda: asyncio.run(slowloris(port, a.slow_conns))),
                ("session_ids", lambda: session_ids(port, ps)),
            ):
                if name not in phases:
                    continue
                prober = Prober(port)
                prober.start()
                time.sleep(0.3)
                out = run()
                prober.stop.set()
                prober.join()
                results[name] = {**out, **prober.report()}
                print(f"{name}: {results[name]}", flush=True)
        finally:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    main()
