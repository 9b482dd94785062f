"""Fault injection in the emulator, measured by the bench on virtual time."""

from __future__ import annotations

import asyncio
import json
import random

from moerun.bench.asgi import AsgiTransport
from moerun.bench.prompts import PromptText
from moerun.bench.records import RequestRecord, summarize_records
from moerun.bench.runner import BenchConfig, LoadGenerator
from moerun.core.load.workload import Arrival, LengthDist, Workload
from moerun.serve.emulator.app import EmulatorApp, build_emulator
from moerun.serve.emulator.clock import ScaledClock, run_virtual
from moerun.serve.emulator.faults import Faults
from tests.serve.emulator_helpers import MODEL, glm5_on_h200


def bench(faults: Faults, n: int = 80) -> tuple[list[RequestRecord], EmulatorApp]:
    wl = Workload.single_turn(
        input_len=LengthDist.fixed(500),
        output_len=LengthDist.fixed(40),
        num_requests=n,
        arrival=Arrival("closed", concurrency=8),
        rng=random.Random(0),
    )

    async def main() -> tuple[list[RequestRecord], EmulatorApp]:
        clock = ScaledClock(1.0, source=asyncio.get_running_loop().time)
        app = build_emulator(glm5_on_h200(), served_model=MODEL, clock=clock, faults=faults)
        t = AsgiTransport(app)
        out = await LoadGenerator(t, BenchConfig(MODEL), PromptText(), now=t.now).run(wl)
        return list(out.records), app

    return run_virtual(main())


def test_errors_and_drops_are_counted() -> None:
    records, app = bench(Faults(error_rate=0.15, drop_rate=0.15, seed=1))
    s = summarize_records(records, num_gpus=8)
    errors = [r.error or "" for r in records if not r.ok]
    assert len(records) == 80 and s["num_failed"] == len(errors) > 0
    assert any(e.startswith("HTTP 500") for e in errors)
    dropped = [r for r in records if "closed before the response ended" in (r.error or "")]
    assert dropped and all(0 < len(r.chunk_s) < 40 for r in dropped)  # mid-stream
    rep = app.engine.replica
    assert rep.num_running == 0 and rep.num_waiting == 0  # dropped requests left the engine


def test_spikes_and_stalls_show_in_latency() -> None:
    base, _ = bench(Faults(), n=24)
    spiky, _ = bench(Faults(latency_spike_rate=0.5, latency_spike_s=3.0, seed=2), n=24)
    stalls, _ = bench(Faults(stall_rate=0.5, stall_s=5.0, seed=2), n=24)

    def ttfts(rs: list[RequestRecord]) -> list[float]:
        return [r.chunk_s[0] - r.start_s for r in rs]

    assert max(ttfts(base)) < 1.0 and max(ttfts(spiky)) > 3.0
    assert sum(t > 3.0 for t in ttfts(spiky)) >= 4
    assert all(r.ok for r in stalls)
    gaps = [max(b - a for a, b in zip(r.chunk_s, r.chunk_s[1:], strict=False)) for r in stalls]
    assert sum(g > 4.9 for g in gaps) >= 4 and max(g for g in gaps if g < 4.9) < 1.0


def test_client_going_away_aborts_the_request() -> None:
    async def main() -> tuple[int, int]:
        clock = ScaledClock(1.0, source=asyncio.get_running_loop().time)
        app = build_emulator(glm5_on_h200(), served_model=MODEL, clock=clock)
        t = AsgiTransport(app)
        body = json.dumps(
            {
                "model": MODEL,
                "prompt": "a b c",
                "max_tokens": 5000,
                "stream": True,
                "ignore_eos": True,
            }
        ).encode()
        res = await t.send("POST", "/v1/completions", body, timeout_s=2.0)
        assert res.error is not None and "timed out" in res.error and res.events
        await asyncio.sleep(1.0)
        rep = app.engine.replica
        return rep.num_running, rep.num_waiting

    assert run_virtual(main()) == (0, 0)
