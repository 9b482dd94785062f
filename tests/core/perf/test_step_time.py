"""The step-time model: speed-of-light bound, monotonicity, and the MTP arithmetic."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moerun.core.deploy.mtp import MTP_OFF, Mtp
from moerun.core.deploy.parallel import Parallel
from moerun.core.perf.step_time import StepBatch, StepModel, StepParams
from tests.conftest import make_deployment

DEPLOYMENTS = [
    make_deployment("glm-5.1-fp8", mtp=Mtp.drafting(1, 0.8)),
    make_deployment("glm-5.1-fp8", parallel=Parallel(tp=1, dp=8, ep=8)),
    make_deployment("glm-5.1-fp8", gpu="h100_sxm", num_gpus=16, parallel=Parallel(tp=8, pp=2)),
    make_deployment("qwen3-235b-a22b", parallel=Parallel(tp=4, dp=2, ep=8), mtp=MTP_OFF),
    make_deployment("llama-3.1-70b", num_gpus=4),
]

params = st.builds(
    StepParams,
    gemm_efficiency=st.floats(0.01, 1.0),
    mem_efficiency=st.floats(0.05, 1.0),
    attn_efficiency=st.floats(0.01, 1.0),
    comm_efficiency=st.floats(0.1, 1.0),
    gemm_m_half=st.floats(0.0, 512.0),
    step_overhead_s=st.floats(0.0, 0.05),
    seq_overhead_s=st.floats(0.0, 1e-3),
    collective_latency_s=st.floats(0.0, 1e-4),
)
batches = st.builds(
    lambda p, ctx, d, dctx: StepBatch(
        prefill_tokens=p,
        prefill_seqs=1 if p else 0,
        prefill_attended=p * min(ctx, 2048),
        prefill_context=p * ctx,
        prefill_logits=1 if p else 0,
        decode_seqs=d,
        decode_attended=d * min(dctx, 2048),
        decode_context=d * dctx,
    ),
    st.integers(0, 16384),
    st.integers(1, 100_000),
    st.integers(0, 512),
    st.integers(1, 200_000),
)


@settings(max_examples=60, deadline=None)
@given(p=params, b=batches, which=st.integers(0, len(DEPLOYMENTS) - 1))
def test_speed_of_light_never_slower(p: StepParams, b: StepBatch, which: int) -> None:
    model = StepModel(DEPLOYMENTS[which], p)
    assert model.speed_of_light().step_time_s(b) <= model.step_time_s(b) * (1 + 1e-9)


def test_more_work_takes_longer() -> None:
    model = StepModel(DEPLOYMENTS[0], StepParams())
    small = StepBatch(decode_seqs=8, decode_attended=8 * 2048, decode_context=8 * 4000)
    big = StepBatch(decode_seqs=128, decode_attended=128 * 2048, decode_context=128 * 4000)
    assert model.step_time_s(big) > model.step_time_s(small) > 0
    longer_ctx = StepBatch(decode_seqs=8, decode_attended=8 * 2048, decode_context=8 * 100_000)
    assert model.step_time_s(longer_ctx) > model.step_time_s(small)  # the DSA indexer sees it all


def test_decode_at_small_batch_is_memory_bound_near_weight_streaming() -> None:
    dep = make_deployment("glm-5.1-fp8")
    sol = StepModel(dep, StepParams.speed_of_light())
    t = sol.step_time_s(StepBatch(decode_seqs=1, decode_attended=1000, decode_context=1000))
    # one token touches 8 of 256 experts per layer: the non-expert weights plus 8 experts
    # per MoE layer, read at full HBM bandwidth, bound the step from below
    shape = sol.shape
    floor = (
        shape.nonexpert_bytes + shape.head_bytes + shape.num_moe_layers * 8 * shape.expert_bytes / 8
    ) / shape.mem_bw
    assert t >= floor * 0.99
    assert t < floor * 2


@pytest.mark.parametrize(("k", "a", "want"), [(0, 0.9, 1.0), (1, 0.85, 1.85), (3, 0.5, 1.875)])
def test_accepted_tokens_per_step(k: int, a: float, want: float) -> None:
    assert Mtp.drafting(k, a).tokens_per_step == pytest.approx(want)


@pytest.mark.parametrize("engine", ["sglang", "vllm"])
def test_shapes_of_one_spec_object_match_a_fresh_walk(engine: str) -> None:
    """The per-spec memo (weights and dense GEMM curves per format and TP) gives every layout
    what walking a distinct copy of the spec gives it, whatever was priced before."""
    from dataclasses import fields, replace

    from moerun.catalog.models import load_spec
    from moerun.catalog.perf.kernels import load_kernel_tables

    spec = load_spec("glm-5.1-fp8")
    tables = load_kernel_tables("h200_sxm", engine)
    p = StepParams(kernels=tables)
    layouts = [
        (Parallel(tp=8), "fp8"),
        (Parallel(tp=4, pp=2), "fp8"),
        (Parallel(tp=8), "bf16"),
        (Parallel(tp=2, dp=4, ep=8), "fp8"),
    ]
    shared = [
        StepModel(make_deployment(spec, engine=engine, parallel=par, weights=w), p)
        for par, w in layouts
    ]
    for (par, w), model in zip(layouts, shared, strict=True):
        fresh = StepModel(make_deployment(replace(spec), engine=engine, parallel=par, weights=w), p)
        for f in fields(model.shape):
            if f.name != "plan":
                assert getattr(model.shape, f.name) == getattr(fresh.shape, f.name), f.name
        a, b = model.shape.plan, fresh.shape.plan
        assert a is not None and b is not None and a.dense is not None and b.dense is not None
        assert (a.dense.xs, a.dense.ys) == (b.dense.xs, b.dense.ys)
        assert (a.fallback_params, a.fallback_bytes) == (b.fallback_params, b.fallback_bytes)
