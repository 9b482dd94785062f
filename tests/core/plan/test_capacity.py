"""The analytic capacity screen: consistent with the step model, monotone, and near the
simulator at the load it picks."""

from __future__ import annotations

import math
import random
from dataclasses import replace

import numpy as np
import pytest

from moerun.catalog.perf.calibration import calibration_for
from moerun.catalog.plan_data import get_preset
from moerun.core.deploy.memory_fit import memory_fit
from moerun.core.deploy.mtp import Mtp
from moerun.core.deploy.parallel import Parallel
from moerun.core.load.metrics import Slo
from moerun.core.load.workload import Arrival
from moerun.core.perf.step_time import StepBatch, StepModel
from moerun.core.plan.capacity import (
    Capacity,
    OperatingPoint,
    ReplicaLimits,
    _batch_grid,
    _choose,
    _p99_share,
    _p99_wait_s,
    _times,
    colocated_capacity,
    disaggregated_capacity,
    with_mtp,
)
from moerun.core.plan.demand import WorkloadStats, workload_stats
from moerun.core.plan.search import Screened
from moerun.core.plan.verify import simulate_at
from tests.conftest import make_deployment


def _stats(preset: str) -> WorkloadStats:
    wl = get_preset(preset).workload(2000, Arrival("poisson", rate_per_s=1.0), random.Random(0))
    return workload_stats(wl, 2048)


@pytest.fixture(scope="module")
def chat_stats() -> WorkloadStats:
    return _stats("chat")


def _model(mtp: int = 1) -> tuple[StepModel, ReplicaLimits]:
    dep = make_deployment(
        parallel=Parallel(tp=1, dp=8, ep=8), mtp=Mtp.drafting(mtp, 0.85), max_context=32768
    )
    fit = memory_fit(dep)
    assert fit.fits
    params = calibration_for("h200_sxm", "vllm").params
    return StepModel(dep, params), ReplicaLimits.of(dep, fit)


def test_with_mtp_equals_a_fresh_step_model() -> None:
    base, _ = _model(mtp=0)
    for k in (1, 3):
        fresh = StepModel(replace(base.dep, mtp=Mtp.drafting(k, 0.85)), base.params)
        derived = with_mtp(base, Mtp.drafting(k, 0.85))
        assert derived.tokens_per_decode_step == pytest.approx(fresh.tokens_per_decode_step)
        b = StepBatch(
            prefill_tokens=500,
            prefill_seqs=1,
            decode_seqs=32,
            decode_attended=32 * 2048,
            decode_context=32 * 9000,
        )
        assert derived.step_time_s(b) == pytest.approx(fresh.step_time_s(b))


def test_capacity_meets_the_slo_and_tightens_with_it(chat_stats: WorkloadStats) -> None:
    model, limits = _model()
    loose = colocated_capacity(model, limits, chat_stats, Slo(ttft_ms=3000, tpot_ms=80))
    tight = colocated_capacity(model, limits, chat_stats, Slo(ttft_ms=3000, tpot_ms=40))
    assert loose.best is not None and tight.best is not None
    assert tight.best.req_per_s < loose.best.req_per_s
    assert tight.best.tpot_p99_ms <= 40 and loose.best.tpot_p99_ms <= 80
    # along the load curve, more sequences in flight: more requests/s, slower tokens
    rates = [q.req_per_s for q in loose.curve]
    tpots = [q.tpot_p99_ms for q in loose.curve]
    assert np.all(np.diff(rates) > 0) and np.all(np.diff(tpots) >= 0)


def test_an_impossible_slo_has_no_best_but_a_closest(chat_stats: WorkloadStats) -> None:
    model, limits = _model()
    cap = colocated_capacity(model, limits, chat_stats, Slo(ttft_ms=3000, tpot_ms=1))
    assert cap.best is None and cap.req_per_s == 0
    assert cap.closest is not None and cap.closest.tpot_p99_ms > 1
    assert cap.limit == "tpot"


def test_the_simulator_agrees_at_the_screened_load(chat_stats: WorkloadStats) -> None:
    model, limits = _model()
    slo = Slo(ttft_ms=2000, tpot_ms=50)
    cap = colocated_capacity(model, limits, chat_stats, slo)
    assert cap.best is not None
    dep = model.dep
    screened = Screened(dep, memory_fit(dep), cap, calibration_for("h200_sxm", "vllm"), 4.0)
    summary, _ = simulate_at(screened, get_preset("chat"), cap.best.req_per_s, seed=1)
    tpot = summary["tpot_ms"]
    assert isinstance(tpot, dict)
    # the screen is within 25% of the simulated p99 TPOT at the load it picked
    assert tpot["p99"] == pytest.approx(cap.best.tpot_p99_ms, rel=0.25)


def _fixed_stats(input_tokens: float, output_tokens: float) -> WorkloadStats:
    """A workload of identical requests with no reusable prefix."""
    return WorkloadStats(
        num_requests=1000,
        mean_input_tokens=input_tokens,
        mean_output_tokens=output_tokens,
        mean_cached_tokens=0.0,
        p99_new_tokens=input_tokens,
        mean_decode_context=input_tokens + output_tokens / 2,
        mean_decode_attended=min(input_tokens + output_tokens / 2, 2048),
        mean_prefill_position=input_tokens / 2,
        mean_prefill_attended=min(input_tokens / 2, 2048),
        idle_token_s_per_request=0.0,
        max_input_tokens=int(input_tokens),
        max_output_tokens=int(output_tokens),
    )


def test_prefill_time_share_follows_the_token_mix() -> None:
    # 8,000 prompt tokens per 20 generated: prompt compute dominates the GPU time (a prefill of
    # 8K tokens costs ~0.1-0.3 s on 8 H200s, twenty shared decode steps a few ms per request);
    # 50 prompt tokens per 2,000 generated: generation dominates. The share splits $/Mtok.
    model, limits = _model(mtp=0)
    slo = Slo(ttft_ms=60_000, tpot_ms=1000)
    prompt_heavy = colocated_capacity(model, limits, _fixed_stats(8000, 20), slo).best
    output_heavy = colocated_capacity(model, limits, _fixed_stats(50, 2000), slo).best
    assert prompt_heavy is not None and output_heavy is not None
    assert prompt_heavy.prefill_time_share > 0.6
    assert output_heavy.prefill_time_share < 0.2


def _decode_step_s(model: StepModel, st: WorkloadStats, seqs: float) -> float:
    """One decode-only step of `seqs` sequences, priced by the step model."""
    return model.step_time_s(
        StepBatch(
            decode_seqs=seqs,
            decode_attended=seqs * st.mean_decode_attended,
            decode_context=seqs * st.mean_decode_context,
        )
    )


def test_disaggregated_unit_follows_its_decode_steps() -> None:
    # x prefill and y decode instances: each decode instance runs decode-only steps of b
    # sequences, emitting tau tokens per sequence per step, so TPOT = t_d / tau and the unit
    # finishes y x b x tau / (O x t_d) requests per second; TTFT carries the KV transfer once.
    model, limits = _model(mtp=1)
    st = _fixed_stats(2000, 400)
    slo = Slo(ttft_ms=60_000, tpot_ms=1000)
    tau = model.tokens_per_decode_step
    one = disaggregated_capacity(model, limits, st, slo, 1, 1, 0.0)
    assert one.best is not None and len(one.curve) > 5
    for q in one.curve:
        t_d = _decode_step_s(model, st, q.batch_size)
        assert q.tpot_p99_ms == pytest.approx(t_d / tau * 1e3, rel=1e-9)
        assert q.req_per_s == pytest.approx(q.batch_size * tau / (400 * t_d), rel=1e-9)
        assert q.output_tok_per_s == pytest.approx(q.req_per_s * 400, rel=1e-9)
        assert q.prefill_time_share == 0.5  # one of the unit's two instances prefills
        # TTFT at least: the prompt's one full-budget prefill step, then a decode step
        t_full = float(_times(model, np.zeros(1), np.array([limits.max_batched_tokens]), st)[0])
        assert q.ttft_p99_ms >= (t_full + t_d) * 1e3
    # Twice the decode instances: twice the rate at each batch size; one in four prefills.
    wide = disaggregated_capacity(model, limits, st, slo, 1, 3, 0.0)
    by_batch = {q.batch_size: q for q in one.curve}
    shared = [q for q in wide.curve if q.batch_size in by_batch]
    assert shared
    for q in shared:
        assert q.req_per_s == pytest.approx(3 * by_batch[q.batch_size].req_per_s, rel=1e-9)
        assert q.tpot_p99_ms == pytest.approx(by_batch[q.batch_size].tpot_p99_ms, rel=1e-9)
        assert q.prefill_time_share == 0.25
        # three times the arrivals at one prefill instance: a longer wait for it
        assert q.ttft_p99_ms > by_batch[q.batch_size].ttft_p99_ms
    # A 250 ms KV transfer adds exactly 250 ms to every TTFT and nothing else.
    moved = disaggregated_capacity(model, limits, st, slo, 1, 1, 0.25)
    assert [q.batch_size for q in moved.curve] == [q.batch_size for q in one.curve]
    for q, base in zip(moved.curve, one.curve, strict=True):
        assert q.ttft_p99_ms - base.ttft_p99_ms == pytest.approx(250.0, rel=1e-9)
        assert q.tpot_p99_ms == base.tpot_p99_ms and q.req_per_s == base.req_per_s


def test_disaggregated_prefill_room_and_kv_bound_the_curve() -> None:
    model, limits = _model(mtp=1)
    st = _fixed_stats(8000, 50)  # prompt-heavy: one prefill instance saturates first
    slo = Slo(ttft_ms=60_000, tpot_ms=1000)
    one = disaggregated_capacity(model, limits, st, slo, 1, 1, 0.0)
    four = disaggregated_capacity(model, limits, st, slo, 4, 1, 0.0)
    assert one.best is not None and four.best is not None
    # More prefill instances admit higher rates before their queue saturates (rho < 1).
    assert max(q.req_per_s for q in four.curve) > max(q.req_per_s for q in one.curve)
    assert len(four.curve) > len(one.curve)
    assert one.limit == "prefill room" or one.best.batch_size < four.best.batch_size
    # A KV pool that holds no decoding context: nothing fits, and KV is named.
    tiny = replace(limits, kv_capacity_tokens=100)
    none = disaggregated_capacity(model, tiny, st, slo, 1, 1, 0.0)
    assert none.best is None and none.closest is None and none.limit == "kv"


def test_replica_limits_are_per_rank_caps_times_ranks() -> None:
    # vLLM DP8: 1024 sequences and 8192 batched tokens per rank (engines.yaml, H200), x 8.
    dep = make_deployment(parallel=Parallel(tp=1, dp=8, ep=8), max_context=32768)
    fit = memory_fit(dep)
    limits = ReplicaLimits.of(dep, fit, kv_capacity_factor=0.5)
    assert limits == ReplicaLimits(
        kv_capacity_tokens=fit.kv_capacity_tokens // 2,
        max_num_seqs=8 * 1024,
        max_batched_tokens=8 * 8192,
    )


def _point(batch: float, rate: float, tpot_ms: float, ttft_ms: float) -> OperatingPoint:
    return OperatingPoint(batch, rate, tpot_ms, ttft_ms, rate * 100, 0.2)


def test_choose_names_what_bounds_the_load() -> None:
    slo = Slo(ttft_ms=1000, tpot_ms=50)
    curve = [
        _point(1, 1.0, 20, 300),
        _point(2, 2.0, 50, 400),  # exactly at the TPOT target: it meets it
        _point(4, 3.0, 70, 500),
    ]
    every = np.ones(3, dtype=bool)
    cap = _choose(curve, slo, every, every)
    assert cap == Capacity(curve[1], curve[0], "tpot", tuple(curve))
    # The next load breaks TTFT, not TPOT.
    slow_start = [curve[0], _point(2, 2.0, 30, 1000), _point(4, 3.0, 40, 1500)]
    assert _choose(slow_start, slo, every, every).limit == "ttft"
    assert _choose(slow_start, slo, every, every).best == slow_start[1]
    # The largest batch meets the SLO: bounded by the batch cap, or by KV when KV cut some.
    easy = Slo(ttft_ms=None, tpot_ms=None)
    assert _choose(curve, easy, every, every) == Capacity(curve[2], curve[0], "batch", tuple(curve))
    cut = np.array([True, True, True, False])
    assert _choose(curve, easy, cut, np.ones(4, dtype=bool)).limit == "kv"
    # Nothing meets it: the fastest point, and the target it misses first.
    strict = Slo(ttft_ms=100, tpot_ms=10)
    assert _choose(curve, strict, every, every) == Capacity(None, curve[0], "tpot", tuple(curve))
    ttft_only = Slo(ttft_ms=100, tpot_ms=None)
    assert _choose(curve, ttft_only, every, every) == Capacity(None, curve[0], "ttft", tuple(curve))
    # Ties with a target meet it: the fastest point exactly at the TPOT target missed TTFT;
    # the next load exactly at the TPOT target was stopped by its TTFT.
    at_tpot = [_point(1, 1.0, 10, 300)]
    assert _choose(at_tpot, strict, np.ones(1, dtype=bool), np.ones(1, dtype=bool)).limit == "ttft"
    edge = [_point(1, 1.0, 20, 300), _point(2, 2.0, 50, 2000)]
    two = np.ones(2, dtype=bool)
    assert _choose(edge, slo, two, two) == Capacity(edge[0], edge[0], "ttft", tuple(edge))
    # No point at all: KV held none, or prefill had no room.
    none = np.zeros(3, dtype=bool)
    assert _choose([], slo, none, every) == Capacity(None, None, "kv")
    assert _choose([], slo, every, none) == Capacity(None, None, "prefill room")


def test_p99_helpers_against_hand_values() -> None:
    # M/M/1: P(wait > t) = rho exp(-(1 - rho) t / S), so the p99 wait is S ln(100 rho)/(1 - rho).
    wait = _p99_wait_s(np.array([0.2, 0.2, 0.2, 0.2]), np.array([0.005, 0.5, 0.9, 1.0]))
    assert wait[0] == 0.0  # rho below 1%: 99% never wait
    assert wait[1] == pytest.approx(0.2 * math.log(50) / 0.5)
    assert wait[2] == pytest.approx(0.2 * math.log(90) / 0.1)
    assert math.isinf(wait[3])
    assert math.isinf(_p99_wait_s(np.array([0.2]), np.array([1.5]))[0])  # overloaded: no p99
    # Mixed-step share over n steps: p + 2.326 sqrt(p (1 - p) / n), capped at 1; above 1 as is.
    share = _p99_share(np.array([0.5, 0.99, 1.5, 0.0]), 100)
    assert share[0] == pytest.approx(0.5 + 2.326 * math.sqrt(0.25 / 100))
    assert share[1] == 1.0
    assert share[2] == 1.5
    assert share[3] == 0.0
    assert _p99_share(np.array([0.1]), 0.5)[0] == pytest.approx(0.1 + 2.326 * 0.3)  # n >= 1


def test_batch_grid_spans_one_to_the_cap() -> None:
    grid = _batch_grid(1000)
    assert grid[0] == 1 and grid[-1] == 1000 and len(grid) <= 48
    assert np.all(np.diff(grid) > 0) and np.all(grid == np.round(grid))
    assert list(_batch_grid(1)) == [1.0]
    assert list(_batch_grid(3)) == [1.0, 2.0, 3.0]


def test_times_price_prompt_tokens_as_whole_prompts() -> None:
    # N new prompt tokens from prompts of mean P new tokens are N / P prefills (at least one),
    # each sampling a token; positions and attended tokens scale with N and with the decodes.
    measured, _ = _model(mtp=0)
    # priced from the kernel tables, and by the roofline alone (which reads every field)
    for model in (measured, measured.with_params(replace(measured.params, kernels=None))):
        _check_times(model)


def _check_times(model: StepModel) -> None:
    st = _fixed_stats(3000, 200)
    got = _times(model, np.array([8.0, 0.0, 8.0]), np.array([0.0, 1500.0, 6000.0]), st)

    def one(decode: float, prefill: float) -> float:
        seqs = max(prefill / 3000, 1.0) if prefill > 0 else 0.0
        return model.step_time_s(
            StepBatch(
                prefill_tokens=prefill,
                prefill_seqs=seqs,
                prefill_attended=prefill * st.mean_prefill_attended,
                prefill_context=prefill * st.mean_prefill_position,
                prefill_logits=seqs,
                decode_seqs=decode,
                decode_attended=decode * st.mean_decode_attended,
                decode_context=decode * st.mean_decode_context,
            )
        )

    assert got[0] == pytest.approx(one(8, 0), rel=1e-9)
    assert got[1] == pytest.approx(one(0, 1500), rel=1e-9)
    assert got[2] == pytest.approx(one(8, 6000), rel=1e-9)
    assert got[2] > got[0] and got[2] > got[1]


def test_an_slo_without_a_ttft_target_bounds_tpot_only(chat_stats: WorkloadStats) -> None:
    model, limits = _model()
    both = colocated_capacity(model, limits, chat_stats, Slo(ttft_ms=10**9, tpot_ms=60))
    tpot_only = colocated_capacity(model, limits, chat_stats, Slo(ttft_ms=None, tpot_ms=60))
    assert tpot_only.best == both.best and tpot_only.best is not None


def _docstring_point(
    model: StepModel, limits: ReplicaLimits, st: WorkloadStats, b: float, mixed: bool
) -> dict[str, float]:
    """One load level of the module docstring's model, in scalar arithmetic: B decoding,
    tau tokens each per step, arrivals a = B tau / O per step bringing c = a P prompt tokens
    into R tokens of room, a share m = max(1 - exp(-a q), c / R) of prefill steps."""
    k, tau = model.shape.num_draft_tokens, model.tokens_per_decode_step
    o, p = st.mean_output_tokens, st.mean_new_tokens
    room = limits.max_batched_tokens - (b * (k + 1) if mixed else 0)
    a = b * tau / o
    c = a * p
    q = max(1.0, p / room)
    m = max(1 - math.exp(-a * q), c / room)
    if mixed:
        m = min(1.0, m)
    chunk = min(c / m, room)

    def step(decode: float, prefill: float) -> float:
        # priced as the screen prices steps (test_times_price_prompt_tokens_as_whole_prompts
        # pins that to StepModel.step_time_s)
        return float(_times(model, np.array([decode]), np.array([prefill]), st)[0])

    t_d = step(b, 0.0)
    steps = o / tau
    spread = 2.326 * math.sqrt(min(m, 1.0) * (1 - min(m, 1.0)) / max(steps, 1.0))
    m99 = max(m, min(1.0, m + spread))
    if mixed:  # prompt chunks ride in decode steps
        t_m = step(b, chunk)
        cycle, cycle99, prefill_s = (
            m * t_m + (1 - m) * t_d,
            m99 * t_m + (1 - m99) * t_d,
            m * (t_m - t_d),
        )
    else:  # prefill-first: prompt steps carry no decodes, the decoders wait through them
        t_m = step(0.0, chunk)
        cycle, cycle99, prefill_s = t_d + m * t_m, t_d + m99 * t_m, m * t_m
    rate = b * tau / (o * cycle)
    rho = c / room
    service = q * t_m
    wait = service * math.log(max(100 * rho, 1.0)) / (1 - rho)
    ttft = wait + math.ceil(st.p99_new_tokens / room) * t_m + max(t_m, t_d)
    ttft += model.params.request_overhead_s  # every token reaches the client this much later
    return {
        "req_per_s": rate,
        "tpot_p99_ms": cycle99 / tau * 1e3,
        "ttft_p99_ms": ttft * 1e3,
        "output_tok_per_s": rate * o,
        "prefill_time_share": prefill_s / cycle,
        "kv_ok": float(
            b * st.mean_decode_context + rate * st.idle_token_s_per_request
            <= limits.kv_capacity_tokens * 0.95
        ),
        "room_ok": float(room > 0 and rho < 1),
    }


@pytest.mark.parametrize(
    ("engine", "kv_tokens"), [("vllm", 100_000), ("sglang", 100_000), ("vllm", 10**9)]
)
def test_colocated_points_follow_the_documented_model(engine: str, kv_tokens: int) -> None:
    dep = make_deployment(
        parallel=Parallel(tp=1, dp=8, ep=8),
        mtp=Mtp.drafting(1, 0.85),
        max_context=32768,
        engine=engine,
    )
    fit = memory_fit(dep)
    params = calibration_for("h200_sxm", engine).params
    model = StepModel(dep, params)
    # Sessions idle 20 s between turns, keeping 3,000 tokens each: KV bounds the top loads.
    st = replace(_fixed_stats(3000, 300), idle_token_s_per_request=60_000.0)
    limits = replace(ReplicaLimits.of(dep, fit), kv_capacity_tokens=kv_tokens)
    cap = colocated_capacity(model, limits, st, Slo(ttft_ms=60_000, tpot_ms=1000))
    expected = {
        b: _docstring_point(model, limits, st, b, mixed=engine == "vllm")
        for b in _batch_grid(limits.max_num_seqs)
    }
    kept = [b for b, e in expected.items() if e["kv_ok"] and e["room_ok"]]
    assert [q.batch_size for q in cap.curve] == kept
    assert len(kept) > 5
    if kv_tokens < 10**9:
        assert len(kept) < len(expected)  # KV cuts the top loads
    for q in cap.curve:
        e = expected[q.batch_size]
        for name in ("req_per_s", "tpot_p99_ms", "ttft_p99_ms", "output_tok_per_s"):
            assert getattr(q, name) == pytest.approx(e[name], rel=1e-9), name
        assert q.prefill_time_share == pytest.approx(e["prefill_time_share"], rel=1e-9)


def test_sglang_limits_size_the_running_requests_from_memory() -> None:
    # SGLang without MTP: per DP rank min(clamp(KV tokens / context x 512, 2048, 4096),
    # KV tokens // 2) running requests (engines.yaml max_running_requests).
    dep = make_deployment(parallel=Parallel(tp=1, dp=8, ep=8), max_context=32768, engine="sglang")
    fit = memory_fit(dep)
    kv = fit.kv_capacity_tokens_per_rank
    per_rank = min(max(min(int(kv / 32768 * 512), 4096), 2048), kv // 2)
    assert ReplicaLimits.of(dep, fit).max_num_seqs == 8 * per_rank


def test_loads_with_no_room_for_prompts_are_cut_quietly() -> None:
    # More sequences than the token budget can step (2 tokens each with one MTP draft): those
    # loads leave no room for a prompt and are no operating point (and raise no warning).
    model, _ = _model(mtp=1)
    limits = ReplicaLimits(kv_capacity_tokens=10**9, max_num_seqs=20_000, max_batched_tokens=8192)
    cap = colocated_capacity(
        model, limits, _fixed_stats(1000, 200), Slo(ttft_ms=None, tpot_ms=None)
    )
    assert cap.curve and max(q.batch_size for q in cap.curve) * 2 < 8192
