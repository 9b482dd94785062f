"""The analytic capacity screen: consistent with the step model, monotone, and near the
simulator at the load it picks."""

from __future__ import annotations

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
from moerun.core.plan.capacity import ReplicaLimits, colocated_capacity, with_mtp
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
