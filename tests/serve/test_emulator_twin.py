"""The digital twin: `moerun bench` against the emulator on virtual time vs `moerun simulate`."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

import pytest

from moerun.bench.asgi import AsgiTransport
from moerun.bench.prompts import PromptText
from moerun.bench.records import summarize_records
from moerun.bench.runner import BenchConfig, LoadGenerator
from moerun.core.load.workload import AgenticShape, Arrival, LengthDist, Workload
from moerun.core.sim.build import simulate_deployment
from moerun.serve.emulator.app import build_emulator
from moerun.serve.emulator.clock import ScaledClock, run_virtual
from tests.serve.emulator_helpers import MODEL, glm5_on_h200


class LateClock(ScaledClock):
    """A busy host: every timer fires `lag_s` after it was due."""

    def __init__(self, lag_s: float, source: Callable[[], float]) -> None:
        super().__init__(1.0, source=source)
        self.lag_s = lag_s

    def call_at(self, t_s: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
        return super().call_at(t_s + self.lag_s, callback)


def measured(wl: Workload, endpoint: str = "chat", lag_s: float = 0.0) -> dict[str, object]:
    dep = glm5_on_h200()

    async def main() -> dict[str, object]:
        source = asyncio.get_running_loop().time
        clock = LateClock(lag_s, source) if lag_s else ScaledClock(1.0, source=source)
        app = build_emulator(dep, served_model=MODEL, clock=clock)
        t = AsgiTransport(app)
        out = await LoadGenerator(t, BenchConfig(MODEL, endpoint), PromptText(), now=t.now).run(wl)
        app.stop()
        assert all(r.ok for r in out.records)
        return summarize_records(out.records, num_gpus=dep.num_gpus)

    return run_virtual(main())


def agree(wl: Workload, endpoint: str = "chat") -> None:
    m = measured(wl, endpoint)
    p = simulate_deployment(glm5_on_h200(), wl).summary()
    assert m["num_completed"] == p["num_completed"] == wl.num_requests
    assert m["output_tok_per_s"] == pytest.approx(p["output_tok_per_s"], rel=0.10)
    assert m["ttft_ms"]["p50"] == pytest.approx(p["ttft_ms"]["p50"], rel=0.10)  # type: ignore[index]
    assert m["prefix_cache_hit_rate"] == pytest.approx(p["prefix_cache_hit_rate"], abs=0.02)


def single(n: int, arrival: Arrival, isl: int, osl: int, prefix: int = 0) -> Workload:
    return Workload.single_turn(
        input_len=LengthDist.fixed(isl),
        output_len=LengthDist.fixed(osl),
        num_requests=n,
        arrival=arrival,
        rng=random.Random(1),
        shared_prefix_tokens=prefix,
    )


def test_low_load_poisson() -> None:
    agree(single(60, Arrival("poisson", rate_per_s=2.0), 2000, 150, prefix=1000))


def test_low_load_completions_endpoint() -> None:
    agree(single(30, Arrival("poisson", rate_per_s=1.0), 1000, 100), endpoint="completions")


def test_saturated_burst() -> None:
    wl = single(400, Arrival("burst"), 3000, 60)
    agree(wl)
    m = measured(wl)
    assert m["ttft_ms"]["p50"] > 1000  # type: ignore[index]  # queueing: it is saturated


def test_agentic_sessions() -> None:
    shape = AgenticShape(
        num_turns=LengthDist("uniform", 4, 2, 6),
        system_tokens=4000,
        tool_output=LengthDist("lognormal", 800),
        output=LengthDist("lognormal", 120),
        think_s=1.0,
    )
    agree(
        Workload.agentic(
            shape=shape,
            num_sessions=12,
            arrival=Arrival("closed", concurrency=6),
            rng=random.Random(2),
        )
    )


def test_closed_loop_back_to_back() -> None:
    agree(single(40, Arrival("closed", concurrency=8), 2000, 100))


def test_late_timers_delay_delivery_not_the_schedule() -> None:
    # Every step's timer fires 5 ms late (a busy host; at time scale 8 that is 0.6 ms of real
    # lag). The steps still run back to back on the emulated schedule, as the simulator runs
    # them: a token reaches its client 5 ms late, but decoding is not 5 ms per step slower
    # (about 10% of a step here, which a fleet of emulators showed against `simulate`).
    wl = single(40, Arrival("closed", concurrency=8), 2000, 100)
    m = measured(wl, lag_s=0.005)
    p = simulate_deployment(glm5_on_h200(), wl).summary()
    assert m["tpot_ms"]["p50"] == pytest.approx(p["tpot_ms"]["p50"], rel=0.02)  # type: ignore[index]
    assert m["output_tok_per_s"] == pytest.approx(p["output_tok_per_s"], rel=0.02)
    # the first token is late by the one lag (plus the steps a late arrival waits for)
    assert 0 <= m["ttft_ms"]["p50"] - p["ttft_ms"]["p50"] < 5 + p["tpot_ms"]["p50"]  # type: ignore[index, operator]
