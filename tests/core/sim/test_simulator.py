"""Simulator invariants: every request accounted for, tokens conserved, determinism, prefix
caching never adds work, the speed-of-light bound, saturation, and the schedulers' rules."""

from __future__ import annotations

import itertools
import random
from dataclasses import replace

import pytest

from moerun.core.deploy.deployment import Deployment
from moerun.core.deploy.memory_fit import memory_fit
from moerun.core.deploy.mtp import MTP_OFF, Mtp
from moerun.core.load.workload import AgenticShape, Arrival, LengthDist, Workload
from moerun.core.perf.step_time import StepBatch, StepParams
from moerun.core.sim.build import SimOptions, build_replica, simulate_deployment
from moerun.core.sim.engine import SimRequest
from moerun.core.traffic.balance import BalanceRule
from moerun.errors import LayoutError
from tests.conftest import make_deployment

PARAMS = StepParams(
    gemm_efficiency=0.3, mem_efficiency=0.8, attn_efficiency=0.3, step_overhead_s=0.01
)


@pytest.fixture(scope="module")
def dep() -> Deployment:
    return make_deployment("glm-5.1-fp8", mtp=Mtp.drafting(1, 0.8), max_context=65_536)


def fixed(n: int, isl: int, osl: int, arrival: Arrival, seed: int = 0) -> Workload:
    return Workload.single_turn(
        input_len=LengthDist("uniform", isl, isl // 2, isl * 3 // 2),
        output_len=LengthDist("uniform", osl, 1, osl * 2),
        num_requests=n,
        arrival=arrival,
        rng=random.Random(seed),
    )


def agentic(n: int, conc: int, seed: int = 0) -> Workload:
    shape = AgenticShape(
        num_turns=LengthDist("uniform", 6, 3, 9),
        system_tokens=6000,
        tool_output=LengthDist("lognormal", 1500),
        output=LengthDist("lognormal", 300),
    )
    return Workload.agentic(
        shape=shape,
        num_sessions=n,
        arrival=Arrival("closed", concurrency=conc),
        rng=random.Random(seed),
    )


# sglang-router 0.3.2's defaults (router_args.py: balance_abs_threshold 64, rel 1.5)
SGL_ROUTER = BalanceRule(abs_threshold=64, rel_threshold=1.5)


def opts(**kw: object) -> SimOptions:
    return SimOptions(params=PARAMS, balance=SGL_ROUTER, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "arrival",
    [Arrival("closed", concurrency=32), Arrival("poisson", rate_per_s=4.0), Arrival("burst")],
)
def test_every_request_finishes_with_its_tokens(dep: Deployment, arrival: Arrival) -> None:
    wl = fixed(120, 3000, 200, arrival)
    res = simulate_deployment(dep, wl, opts())
    assert len(res.results) == wl.num_requests
    want = {s.session_id: s.turns[0].output_tokens for s in wl.sessions}
    for r in res.results:
        assert r.ok and r.output_tokens == want[r.session_id]
        assert r.first_token_s is not None and r.start_s <= r.first_token_s <= r.end_s


def test_agentic_turns_follow_each_other(dep: Deployment) -> None:
    wl = agentic(12, 4)
    res = simulate_deployment(dep, wl, opts())
    assert len(res.results) == wl.num_requests
    by_session: dict[int, list] = {}
    for r in res.results:
        by_session.setdefault(r.session_id or 0, []).append(r)
    for turns in by_session.values():
        turns.sort(key=lambda r: r.turn)
        for prev, cur in itertools.pairwise(turns):
            assert cur.start_s == pytest.approx(
                prev.end_s + 2.0
            )  # think time after the previous turn
    assert res.summary()["prefix_cache_hit_rate"] > 0.5  # the growing prefix is reused


def test_same_seed_same_report(dep: Deployment) -> None:
    a = simulate_deployment(
        dep, agentic(10, 4, seed=5), opts(num_replicas=2, routing="prefix-affinity")
    )
    b = simulate_deployment(
        dep, agentic(10, 4, seed=5), opts(num_replicas=2, routing="prefix-affinity")
    )
    assert a.summary() == b.summary()


def test_prefix_caching_never_increases_computed_tokens(dep: Deployment) -> None:
    for wl in (agentic(10, 4), fixed(60, 2000, 100, Arrival("closed", concurrency=8))):
        on = simulate_deployment(dep, wl, opts())
        off = simulate_deployment(dep, wl, opts(prefix_caching=False))
        assert on.num_prefill_tokens <= off.num_prefill_tokens
        assert off.summary()["prefix_cache_hit_rate"] == 0


def test_speed_of_light_is_never_slower(dep: Deployment) -> None:
    wl = fixed(80, 4000, 150, Arrival("closed", concurrency=16))
    cal = simulate_deployment(dep, wl, opts()).summary()
    sol = simulate_deployment(dep, wl, opts(), params=StepParams.speed_of_light()).summary()
    assert sol["output_tok_per_s"] >= cal["output_tok_per_s"]
    for key in ("ttft_ms", "tpot_ms", "e2e_ms"):
        assert sol[key]["p50"] <= cal[key]["p50"]  # type: ignore[index]


def test_saturation_grows_ttft_with_the_queue(dep: Deployment) -> None:
    low = simulate_deployment(
        dep, fixed(40, 16000, 128, Arrival("closed", concurrency=4)), opts()
    ).summary()
    high = simulate_deployment(
        dep, fixed(640, 16000, 128, Arrival("closed", concurrency=64)), opts()
    ).summary()
    assert high["ttft_ms"]["p50"] > 5 * low["ttft_ms"]["p50"]  # type: ignore[index]
    assert high["output_tok_per_s"] < 3 * low["output_tok_per_s"]  # throughput flattens


def test_requests_that_can_never_run_are_rejected_not_lost(dep: Deployment) -> None:
    small = replace(dep, max_context=8192)
    wl = fixed(10, 6000, 4000, Arrival("burst"))
    res = simulate_deployment(small, wl, opts())
    assert len(res.results) == 10
    failed = [r for r in res.results if not r.ok]
    assert failed and all("max context" in (r.error or "") for r in failed)


def test_kv_pressure_preempts_and_still_completes() -> None:
    tight = make_deployment("glm-5.1-fp8", mtp=MTP_OFF, max_context=65_536, mem_fraction=0.80)
    cap = memory_fit(tight).kv_capacity_tokens
    n = 3 * cap // 30_000 + 4
    wl = fixed(n, 20_000, 8000, Arrival("burst"))
    res = simulate_deployment(tight, wl, opts())
    assert res.num_preemptions > 0
    assert all(r.ok for r in res.results) and len(res.results) == n


def test_a_layout_that_does_not_fit_is_refused() -> None:
    dep = make_deployment("glm-5.1", gpu="h100_sxm", num_gpus=8, weights="bf16")
    with pytest.raises(LayoutError, match="cannot run"):
        build_replica(dep)


def test_vllm_mixes_decode_and_prefill_within_the_budget(dep: Deployment) -> None:
    rep = build_replica(replace(dep, mtp=MTP_OFF, max_num_batched_tokens=2048), opts())
    rep.submit(SimRequest(0, (("a", 100),), 50, 0.0))
    first = rep.step(0.0)
    assert first.first_token == (0,)
    rep.submit(SimRequest(1, (("b", 5000),), 5, 0.0))
    second = rep.step(first.duration_s)
    assert second.batch.decode_seqs == 1 and second.batch.prefill_tokens == 2047  # chunked
    assert second.first_token == ()


def test_sglang_runs_prefill_batches_alone(dep: Deployment) -> None:
    sg = replace(dep, engine=make_deployment(engine="sglang").engine, mtp=MTP_OFF)
    rep = build_replica(sg, opts())
    rep.submit(SimRequest(0, (("a", 100),), 50, 0.0))
    rep.step(0.0)
    rep.submit(SimRequest(1, (("b", 500),), 5, 0.0))
    step = rep.step(1.0)
    assert step.batch.prefill_tokens == 500 and step.batch.decode_seqs == 0
    assert rep.step(2.0).batch.decode_seqs == 2


def test_disaggregated_prefill_decode_completes_and_counts_transfer(dep: Deployment) -> None:
    wl = fixed(60, 8000, 100, Arrival("closed", concurrency=16))
    pd = simulate_deployment(dep, wl, opts(num_prefill=1, num_decode=1))
    assert len(pd.results) == 60 and all(r.ok for r in pd.results)
    assert pd.num_gpus == 16
    assert all((r.ttft_s or 0) > 0 for r in pd.results)


def test_prefix_affinity_keeps_sessions_on_their_cache(dep: Deployment) -> None:
    wl = agentic(16, 8)
    rr = simulate_deployment(dep, wl, opts(num_replicas=4, routing="round-robin")).summary()
    pa = simulate_deployment(dep, wl, opts(num_replicas=4, routing="prefix-affinity")).summary()
    assert pa["prefix_cache_hit_rate"] > rr["prefix_cache_hit_rate"]


def test_kv_capacity_factor_scales_the_pool(dep: Deployment) -> None:
    full = build_replica(dep, opts())
    part = build_replica(dep, opts(kv_capacity_factor=0.5))
    assert part.config.kv_capacity_tokens == int(full.config.kv_capacity_tokens * 0.5)
    wl = fixed(320, 16000, 128, Arrival("closed", concurrency=64))
    small = simulate_deployment(dep, wl, opts(kv_capacity_factor=0.5)).summary()
    big = simulate_deployment(dep, wl, opts()).summary()
    assert small["ttft_ms"]["p50"] > big["ttft_ms"]["p50"]  # type: ignore[index]


def _sglang(dep: Deployment) -> Deployment:
    return replace(dep, engine=make_deployment(engine="sglang").engine, mtp=MTP_OFF)


def _fixed_closed(isl: int, osl: int, conc: int, n: int, staggered: bool) -> Workload:
    return Workload.single_turn(
        input_len=LengthDist.fixed(isl),
        output_len=LengthDist.fixed(osl),
        num_requests=n,
        arrival=Arrival("closed", concurrency=conc, staggered=staggered),
        rng=random.Random(0),
    )


def test_staggered_clients_start_one_session_length_apart(dep: Deployment) -> None:
    # without MTP a decode step emits one token: a 400-token session lasts 400 decode steps,
    # so four clients start 0, 100, 200 and 300 steps into the run
    res = simulate_deployment(
        _sglang(dep), _fixed_closed(4096, 400, 4, 4, staggered=True), opts(), record=True
    )
    assert res.trace is not None
    assert [res.trace.start_step[i] for i in range(4)] == [0, 100, 200, 300]
    # started together, all four arrive before the first step
    res = simulate_deployment(
        _sglang(dep), _fixed_closed(4096, 400, 4, 4, staggered=False), opts(), record=True
    )
    assert res.trace is not None
    assert [res.trace.start_step[i] for i in range(4)] == [0, 0, 0, 0]


def test_staggered_clients_do_not_wait_in_prefill_waves(dep: Deployment) -> None:
    sg = _sglang(dep)
    model = build_replica(sg, opts()).model
    n = 4096
    one_prefill = model.step_time_s(
        StepBatch(
            prefill_tokens=n,
            prefill_seqs=1,
            prefill_attended=n * (n + 1) / 2,
            prefill_context=n * (n + 1) / 2,
            prefill_logits=1,
        )
    )
    decode = model.step_time_s(
        StepBatch(decode_seqs=4, decode_attended=4 * 2 * n, decode_context=4 * 2 * n)
    )

    def median_ttft(staggered: bool) -> float:
        s = simulate_deployment(sg, _fixed_closed(n, 400, 4, 40, staggered), opts()).summary()
        return float(s["ttft_ms"]["p50"]) / 1e3  # type: ignore[index]

    # spread out, a prompt waits at most for the step in progress, then is prefilled alone
    assert median_ttft(True) <= one_prefill * 1.05 + decode
    # together, every wave's four prompts queue behind each other: the median waits for two
    assert median_ttft(False) >= 2 * one_prefill * 0.95


def test_request_overhead_delays_every_token_not_the_schedule(dep: Deployment) -> None:
    wl = fixed(24, 2000, 100, Arrival("closed", concurrency=8))
    base = simulate_deployment(dep, wl, opts())
    late = simulate_deployment(dep, wl, SimOptions(params=replace(PARAMS, request_overhead_s=0.25)))
    assert base.num_steps == late.num_steps
    for a, b in zip(base.results, late.results, strict=True):
        assert a.first_token_s is not None and b.first_token_s is not None
        assert b.first_token_s - b.start_s == pytest.approx(a.first_token_s - a.start_s + 0.25)
        assert b.end_s - b.first_token_s == pytest.approx(a.end_s - a.first_token_s)
