"""Benchmark: the load generator's capacity and timing error, against httpx in the same run.

Run: .venv/bin/python benchmarks/bench_loadgen.py [--quick]

A local server whose timing is known (`tests/fixtures/fixed_timing.py`, its own process) stamps
every chunk with its send time on the monotonic clock; a client's timing error is its receive
stamp minus that. Printed, for moerun's client and for an httpx client doing the same work on
the same event loop (uvloop):
  short requests   completed req/s over a closed loop of 256 streams of one token each
  streams          N concurrent streams (each 100 tokens at a known pace): completed, and the
                   timing error p50 / p99 of every chunk
and the ratio moerun / httpx. Targets (issue 7): >= 1,000 req/s; 2,000 concurrent streams;
timing error p50 < 1 ms at 1,000 streams.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import httpx
import numpy as np
import uvloop

from moerun.bench.http import HttpTransport
from moerun.bench.prompts import PromptText
from moerun.bench.runner import BenchConfig, LoadGenerator, paused_gc
from moerun.bench.transport import HttpResult
from moerun.core.load.workload import Arrival, LengthDist, Workload

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent
BODY = {"model": "fixed-timing", "messages": [{"role": "user", "content": "a b c d"}],
        "stream": True, "stream_options": {"include_usage": True}}  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(ttft_ms: float, itl_ms: float) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    cmd = [sys.executable, "-m", "tests.fixtures.fixed_timing", "--port", str(port),
           "--ttft-ms", str(ttft_ms), "--itl-ms", str(itl_ms)]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT)  # the test server lives under tests/
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start")


# ---- short requests: req/s ------------------------------------------------------------
async def moerun_rps(url: str, seconds: float, concurrency: int) -> float:
    t = HttpTransport(url)
    wl = Workload.single_turn(
        input_len=LengthDist.fixed(4), output_len=LengthDist.fixed(1), num_requests=10**7,
        arrival=Arrival("closed", concurrency=concurrency), rng=random.Random(0),
    )  # fmt: skip
    gen = LoadGenerator(t, BenchConfig("fixed-timing"), PromptText(), now=t.now)
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(seconds, stop.set)
    out = await gen.run(wl, stop)
    await t.aclose()
    assert all(r.ok for r in out.records)
    return len(out.records) / out.duration_s


async def httpx_rps(url: str, seconds: float, concurrency: int) -> float:
    body = {**BODY, "max_tokens": 1}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    done = 0
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        end = time.monotonic() + seconds

        async def worker() -> None:
            nonlocal done
            while time.monotonic() < end:
                async with client.stream("POST", "/v1/chat/completions", json=body) as r:
                    events = [json.loads(line[6:]) async for line in r.aiter_lines()
                              if line.startswith("data: {")]  # fmt: skip
                assert events
                done += 1

        t0 = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done / (time.monotonic() - t0)


# ---- concurrent streams: timing error ----------------------------------------------------
async def _staggered(i: int, n: int, spread_s: float, send: Callable[[], Awaitable[T]]) -> T:
    await asyncio.sleep(spread_s * i / n)
    return await send()


async def moerun_streams(url: str, n: int, spread_s: float) -> tuple[int, np.ndarray]:
    t = HttpTransport(url)
    body = json.dumps({**BODY, "max_tokens": 100}).encode()

    def send() -> Awaitable[HttpResult]:
        return t.send("POST", "/v1/chat/completions", body)

    with paused_gc():  # as LoadGenerator.run does
        results = await asyncio.gather(*(_staggered(i, n, spread_s, send) for i in range(n)))
    await t.aclose()
    errors = [
        recv - json.loads(data)["moerun_sent_s"]
        for r in results
        for recv, data in r.events
        if b"moerun_sent_s" in data
    ]
    ok = sum(1 for r in results if r.error is None and r.status == 200)
    return ok, np.array(errors) * 1e3


async def httpx_streams(url: str, n: int, spread_s: float) -> tuple[int, np.ndarray]:
    body = {**BODY, "max_tokens": 100}
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    errors: list[float] = []
    ok = 0
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as client:

        async def one() -> None:
            nonlocal ok
            async with client.stream("POST", "/v1/chat/completions", json=body) as r:
                async for line in r.aiter_lines():
                    now = time.monotonic()
                    if "moerun_sent_s" in line:
                        errors.append(now - json.loads(line[6:])["moerun_sent_s"])
            ok += 1

        await asyncio.gather(
            *(_staggered(i, n, spread_s, one) for i in range(n)), return_exceptions=True
        )
    return ok, np.array(errors) * 1e3


def run(fn: Callable[..., Awaitable[object]], *args: object) -> object:
    return uvloop.run(fn(*args))  # type: ignore[arg-type]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="shorter runs, 1,000 streams only")
    args = ap.parse_args()
    seconds = 3.0 if args.quick else 6.0
    levels = (1000,) if args.quick else (1000, 2000)
    fast, fast_url = start_server(0.0, 0.0)
    paced, paced_url = start_server(50.0, 50.0)
    try:
        time.sleep(0.5)
        print(f"short requests (closed loop of 256, 1 token, {seconds:g} s each)")
        m = float(run(moerun_rps, fast_url, seconds, 256))  # type: ignore[arg-type]
        h = float(run(httpx_rps, fast_url, seconds, 256))  # type: ignore[arg-type]
        print(
            f"  moerun {m:8.0f} req/s   httpx {h:8.0f} req/s   ratio {m / h:5.2f}x   target >= 1000"
        )
        for n, spread_s in ((n, s) for n in levels for s in (0.0, 0.05)):
            how = "started together" if not spread_s else "starts spread over one ITL"
            print(f"{n} concurrent streams (100 tokens each, TTFT 50 ms, ITL 50 ms, {how})")
            row = {}
            for name, fn in (("moerun", moerun_streams), ("httpx", httpx_streams)):
                ok, err = run(fn, paced_url, n, spread_s)  # type: ignore[misc]
                p50, p99 = np.percentile(err, [50, 99]) if err.size else (float("nan"),) * 2
                row[name] = p50
                print(
                    f"  {name:6s} completed {ok:5d}/{n}   "
                    f"timing error p50 {p50:7.3f} ms  p99 {p99:8.3f} ms"
                )
            ratio = row["httpx"] / row["moerun"]
            print(f"  timing error p50, httpx / moerun: {ratio:5.1f}x   (target: < 1 ms at 1000)")
    finally:
        for proc in (fast, paced):
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()
