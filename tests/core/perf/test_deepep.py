"""Behind DeepEP (SGLang, attention DP + EP on NVIDIA) the experts are priced from the DeepEP
tables: low-latency mode for decode steps, normal mode for a step in which any rank prefills.

Expected values are read from the catalog's JSON files directly, not through the loader."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from moerun.catalog.gpus import get_gpu
from moerun.catalog.perf.kernels import load_kernel_tables
from moerun.core.deploy.parallel import Parallel
from moerun.core.perf.step_time import StepBatch, StepModel, StepParams, step_time_parts
from tests.conftest import make_deployment, raw_kernel_file

DP8 = Parallel(tp=1, dp=8, ep=8)


def _row(gpu: str, phase: str, ep: int, hidden: int = 7168) -> tuple[list[float], list[float]]:
    (r,) = [
        r
        for r in raw_kernel_file(gpu)["moe_deepep"]
        if (r["phase"], r["dtype"], r["hidden"], r["moe_ep"]) == (phase, "fp8_block", hidden, ep)
    ]
    return r["tokens_per_rank"], [v / 1e3 for v in r["latency_ms"]]


def _model(model: str, gpu: str, parallel: Parallel = DP8, engine: str = "sglang") -> StepModel:
    dep = make_deployment(model, gpu=gpu, engine=engine, parallel=parallel)
    return StepModel(dep, replace(StepParams(), kernels=load_kernel_tables(gpu, engine)))


def test_the_premise_the_tables_hold_deepseek_width_only_and_b200_lacks_ep8() -> None:
    for gpu in ("h200_sxm", "b200_sxm"):
        rows = raw_kernel_file(gpu)["moe_deepep"]
        assert {r["hidden"] for r in rows} == {7168}
    assert {r["moe_ep"] for r in raw_kernel_file("b200_sxm")["moe_deepep"]} >= {4, 16}
    assert 8 not in {r["moe_ep"] for r in raw_kernel_file("b200_sxm")["moe_deepep"]}
    assert 8 in {r["moe_ep"] for r in raw_kernel_file("h200_sxm")["moe_deepep"]}


@pytest.mark.parametrize("phase", ["decode", "prefill"])
def test_measured_shape_and_ep_read_back_per_group_token(phase: str) -> None:
    # DeepSeek-V3 (7168 wide, 256 experts, top-8) on 8x H200 as DP8 EP8: exactly the table
    model = _model("deepseek-v3", "h200_sxm")
    plan = model.shape.plan
    assert plan is not None
    curve = plan.moe if phase == "decode" else plan.moe_prefill
    assert curve is not None and curve.measured
    xs, ys = _row("h200_sxm", phase, 8)
    layers = model.dep.model.arch.num_moe_layers
    for x, y in zip(xs, ys, strict=True):
        # the plan's curve is over a MoE group's tokens: EP x the rank's
        assert curve(8.0 * x) == pytest.approx(y * layers, rel=1e-9)


def test_a_narrower_model_takes_the_table_times_its_width() -> None:
    model = _model("glm-5-fp8", "h200_sxm")
    plan = model.shape.plan
    assert plan is not None and plan.moe is not None and plan.moe_prefill is not None
    layers = model.dep.model.arch.num_moe_layers
    for phase, curve in (("decode", plan.moe), ("prefill", plan.moe_prefill)):
        xs, ys = _row("h200_sxm", phase, 8)
        assert curve(8.0 * xs[2]) == pytest.approx(ys[2] * 6144 / 7168 * layers, rel=1e-9)
        assert not curve.measured  # derived from another width


def test_an_unmeasured_ep_lies_between_its_neighbours_log_linear() -> None:
    model = _model("deepseek-v3", "b200_sxm")
    plan = model.shape.plan
    assert plan is not None and plan.moe is not None
    layers = model.dep.model.arch.num_moe_layers
    x4, y4 = _row("b200_sxm", "decode", 4)
    x16, y16 = _row("b200_sxm", "decode", 16)
    assert x4 == x16
    # EP 8 is half-way between 4 and 16 in log EP: the geometric mean at equal tokens per rank
    for x, a, b in zip(x4, y4, y16, strict=True):
        assert plan.moe(8.0 * x) == pytest.approx(math.sqrt(a * b) * layers, rel=1e-9)
    assert not plan.moe.measured


def test_only_sglang_attention_dp_with_ep_on_nvidia_runs_deepep() -> None:
    assert make_deployment("glm-5-fp8", engine="sglang", parallel=DP8).uses_deepep
    assert not make_deployment("glm-5-fp8", engine="sglang").uses_deepep  # TP8
    assert not make_deployment("glm-5-fp8", engine="vllm", parallel=DP8).uses_deepep
    amd = make_deployment("glm-5-fp8", engine="sglang", parallel=DP8)
    assert not replace(amd, gpu=get_gpu("mi300x")).uses_deepep
    # TP8 keeps the fused-MoE table and one all-to-all mode
    plan = _model("glm-5-fp8", "h200_sxm", Parallel(tp=8)).shape.plan
    assert plan is not None and plan.moe_prefill is None and plan.alltoall_prefill is None
    assert plan.moe is not None and plan.moe.measured


def test_a_step_that_prefills_prices_deepep_normal_mode() -> None:
    model = _model("glm-5-fp8", "h200_sxm")
    plan, p = model.shape.plan, model.params
    assert plan is not None and plan.moe is not None and plan.moe_prefill is not None
    assert plan.alltoall is not None and plan.alltoall_prefill is not None
    decode = StepBatch(decode_seqs=256, decode_attended=256 * 2048, decode_context=256 * 3000)
    # the same 256 tokens, once as decodes and once with one of them a prompt token: the step
    # with the prompt switches every MoE layer and all-to-all to normal mode
    mixed = replace(decode, decode_seqs=255, prefill_tokens=1, prefill_seqs=1, prefill_logits=1)
    ks = p.kernel_scale
    switch = (
        plan.moe_prefill(256.0)
        - plan.moe(256.0)
        + plan.alltoall_prefill(32.0)
        - plan.alltoall(32.0)
    ) * ks
    assert abs(switch) > 1e-4  # the modes differ by more than a tenth of a millisecond
    rest = model.step_time_s(mixed) - switch - model.step_time_s(decode)
    # what remains is attention and head work of one sequence: small next to the switch
    assert abs(rest) < 0.2 * abs(switch)


def test_arrays_of_steps_price_each_step_in_its_own_mode() -> None:
    model = _model("glm-5-fp8", "b200_sxm")
    steps = [
        StepBatch(decode_seqs=64, decode_attended=64 * 2048, decode_context=64 * 9000),
        StepBatch(prefill_tokens=16384, prefill_seqs=2, prefill_logits=2),
        StepBatch(
            prefill_tokens=2048,
            prefill_seqs=1,
            prefill_logits=1,
            decode_seqs=100,
            decode_attended=100 * 2048,
            decode_context=100 * 5000,
        ),
    ]
    arrays = StepBatch(
        **{
            f: np.array([getattr(b, f) for b in steps], dtype=float)
            for f in StepBatch.__dataclass_fields__
        }
    )
    one_by_one = [model.step_time_s(b) for b in steps]
    together = step_time_parts(model.shape, model.params, arrays, np.maximum)[0]
    assert list(together) == pytest.approx(one_by_one, rel=1e-12)
