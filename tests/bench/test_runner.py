"""The load generator against servers with known timing and known faults."""

from __future__ import annotations

import asyncio
import random
import time

import numpy as np

from moerun.bench.http import HttpTransport
from moerun.bench.prompts import PromptText
from moerun.bench.records import summarize_records
from moerun.bench.runner import BenchConfig, LoadGenerator, Outcome
from moerun.core.load.workload import Arrival, LengthDist, Session, Turn, Workload
from tests.bench.conftest import ThreadServer, fixed_server
from tests.fixtures.fixed_timing import FixedTiming


def run(
    url: str, wl: Workload, *, endpoint: str = "chat", stop_after_s: float | None = None
) -> Outcome:
    async def main() -> Outcome:
        t = HttpTransport(url)
        gen = LoadGenerator(t, BenchConfig("fixed-timing", endpoint), PromptText(), now=t.now)
        stop = asyncio.Event()
        if stop_after_s is not None:
            asyncio.get_running_loop().call_later(stop_after_s, stop.set)
        try:
            return await gen.run(wl, stop)
        finally:
            await t.aclose()

    return asyncio.run(main())


def fixed(n: int, arrival: Arrival, isl: int = 64, osl: int = 8) -> Workload:
    return Workload.single_turn(
        input_len=LengthDist.fixed(isl),
        output_len=LengthDist.fixed(osl),
        num_requests=n,
        arrival=arrival,
        rng=random.Random(0),
    )


def test_known_timing_is_measured(fast_server: ThreadServer) -> None:
    for endpoint in ("chat", "completions"):
        out = run(fast_server.url, fixed(40, Arrival("closed", concurrency=8)), endpoint=endpoint)
        s = summarize_records(out.records, num_gpus=1)
        assert s["num_completed"] == 40 and s["total_output_tokens"] == 40 * 8
        assert (
            s["total_input_tokens"] == 40 * 64
        )  # the server counts words as the bench writes them
        ttft, itl = s["ttft_ms"], s["itl_ms"]
        assert isinstance(ttft, dict) and isinstance(itl, dict)
        assert 19.0 < ttft["p50"] < 26.0
        assert 4.0 < itl["p50"] < 7.0


def test_agentic_turns_grow_and_wait() -> None:
    turns = (Turn(10, 4, 0.0), Turn(6, 3, 0.05), Turn(5, 2, 0.05))
    wl = Workload(
        "agentic", (Session(0, turns, "sys", 20), Session(1, turns, "sys", 20)), Arrival("burst")
    )
    with fixed_server(FixedTiming(ttft_s=0.01, itl_s=0.002)) as srv:
        out = run(srv.url, wl)
    recs = {(r.session_id, r.turn): r for r in out.records}
    assert len(recs) == 6 and all(r.ok for r in recs.values())
    for r in recs.values():
        assert r.input_tokens == r.expected_input_tokens  # prompt = history + returned text
    assert [recs[(0, k)].input_tokens for k in range(3)] == [30, 40, 48]
    for k in (1, 2):
        assert recs[(0, k)].start_s >= recs[(0, k - 1)].end_s + 0.05 - 1e-3


def test_poisson_arrivals_follow_the_schedule(fast_server: ThreadServer) -> None:
    wl = fixed(30, Arrival("poisson", rate_per_s=100.0), osl=2)
    out = run(fast_server.url, wl)
    starts = np.array([r.start_s for r in out.records])
    planned = np.array([s.start_s or 0.0 for s in wl.sessions])
    assert np.abs(starts - planned).max() < 0.01


def test_faults_are_counted_not_fatal() -> None:
    timing = FixedTiming(ttft_s=0.005, itl_s=0.001, error_rate=0.2, drop_rate=0.2, seed=3)
    with fixed_server(timing) as srv:
        out = run(srv.url, fixed(100, Arrival("closed", concurrency=10)))
    errors = [r.error for r in out.records if not r.ok]
    s = summarize_records(out.records, num_gpus=1)
    assert len(out.records) == 100 and s["num_failed"] == len(errors)
    assert any("HTTP 500" in (e or "") for e in errors)
    assert any("closed before the response ended" in (e or "") for e in errors)
    assert 20 <= len(errors) <= 60


def test_stop_keeps_what_finished() -> None:
    with fixed_server(FixedTiming(ttft_s=0.01, itl_s=0.01)) as srv:
        t0 = time.monotonic()
        out = run(srv.url, fixed(1000, Arrival("closed", concurrency=4), osl=10), stop_after_s=0.5)
    assert time.monotonic() - t0 < 2.0
    assert out.interrupted and 0 < len(out.records) < 1000
    assert out.num_unfinished == 4
    assert all(r.ok for r in out.records)
