"""Benchmark: how long a key generated or deleted on one gateway replica takes to work (or be
refused) on another, with two `moerun gateway` processes on one database.

Run: .venv/bin/python benchmarks/bench_key_propagation.py [--rounds 10] [--database-url URL]

The second replica is polled with GET /v1/models (authenticated, no backend needed) every
10 ms; the default SQLite file is made in a temporary folder.
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
from pathlib import Path

import httpx
import yaml

MASTER = "sk-bench-master-key"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _start(config: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    argv = [sys.executable, "-m", "moerun.cli", "gateway", "--config", str(config)]
    env = {**os.environ, "MOERUN_MASTER_KEY": MASTER}
    proc = subprocess.Popen([*argv, "--port", str(port)], env=env, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/health", timeout=1)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("a gateway did not start")


def _until(url: str, key: str, status: int) -> float:
    t0 = time.monotonic()
    with httpx.Client(timeout=5, headers={"authorization": f"Bearer {key}"}) as c:
        while c.get(url + "/v1/models").status_code != status:
            time.sleep(0.01)
    return time.monotonic() - t0


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--database-url")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
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
            "database_url": a.database_url or f"sqlite:///{Path(tmp) / 'usage.db'}",
            "server": {"access_log": False},
        }
        path = Path(tmp) / "gw.yaml"
        path.write_text(yaml.safe_dump(cfg))
        started = [_start(path) for _ in range(2)]
        (_, one), (_, two) = started
        admin = {"authorization": f"Bearer {MASTER}"}
        seen, gone = [], []
        try:
            for _ in range(a.rounds):
                key = httpx.post(one + "/key/generate", json={}, headers=admin).json()["key"]
                seen.append(_until(two, key, 200))
                httpx.post(two + "/key/delete", json={"keys": [key]}, headers=admin)
                gone.append(_until(one, key, 401))
        finally:
            for proc, _ in started:
                proc.terminate()
                proc.wait(timeout=10)
    for what, xs in (("new key works", seen), ("deleted key refused", gone)):
        print(
            f"{what} on the other replica: median {statistics.median(xs):.3f} s, "
            f"max {max(xs):.3f} s ({len(xs)} rounds)"
        )


if __name__ == "__main__":
    main()
