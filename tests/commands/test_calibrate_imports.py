"""`moerun calibrate` on GuideLLM results measured against `moerun emulate`: the refit recovers
the parameters the emulator ran with (issue 15's acceptance)."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import pytest

from moerun.catalog.perf.calibration import calibration_for
from moerun.catalog.perf.kernels import load_kernel_tables
from moerun.cli import main
from moerun.commands.calibration_inputs import load_runs
from moerun.commands.calibration_points import point_for
from moerun.core.calibrate.calibration import predict
from moerun.core.deploy.parallel import Parallel
from moerun.core.perf.step_time import StepBatch, StepParams, step_time
from moerun.core.sim.build import SimOptions

FIXTURES = Path(__file__).parents[1] / "fixtures" / "imports"
FILES = [str(FIXTURES / f"guidellm-isl{n}.json") for n in (512, 1024, 2048)]
FLAGS = ["--model", "glm-5.1", "--gpu", "h200_sxm", "--num-gpus", "8", "--time-scale", "0.1"]
# What the emulator ran with when scripts/make_guidellm_fixture.py wrote the fixtures: the
# catalog's h200_sxm-vllm calibration v4 (its parameters, priced with the h200_sxm vLLM kernel
# tables, fp8_block GEMMs from SGLang's graph-timed table, and KV capacity factor 0.7; no MTP),
# on the default layout DP8 x EP8; the collective constants are H200's as its 8-GPU all-reduce
# table gives them (bus bandwidth at 512 MiB over the NVLink bandwidth, and the smallest
# message's time).
EMULATOR = StepParams(
    gemm_efficiency=0.6,
    mem_efficiency=0.75,
    attn_efficiency=0.4,
    comm_efficiency=0.5220883531994109,
    gemm_m_half=64.0,
    step_overhead_s=1.3435587879604683e-22,
    seq_overhead_s=4.9999999999999996e-05,
    collective_latency_s=4.712e-06,
    kernel_scale=1.3042443499857388,
    kernels=load_kernel_tables("h200_sxm", "vllm"),
)
EMULATOR_KV_FACTOR = 0.7


def test_the_emulator_ran_with_the_catalogs_profile() -> None:
    # the truth above is what `moerun emulate --gpu h200_sxm --num-gpus 8` serves with
    params = calibration_for("h200_sxm", "vllm").params
    assert params.values() == EMULATOR.values()
    assert calibration_for("h200_sxm", "vllm").kv_capacity_factor == EMULATOR_KV_FACTOR


def _ns() -> argparse.Namespace:
    return argparse.Namespace(
        time_scale=0.1, model="glm-5.1", gpu="h200_sxm", num_gpus=8, weights="fp8",
        kv_dtype="fp8", engine="vllm", tp=None, dp=None, ep=None, pp=None, mtp=0,
        max_context=None, mem_fraction=None, max_num_batched_tokens=None,
    )  # fmt: skip


def test_guidellm_results_refit_the_emulators_parameters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["calibrate", *FILES, *FLAGS, "--dry-run", "--json", "--out", str(tmp_path)])
    assert code == 0
    (group,) = json.loads(capsys.readouterr().out)["groups"]
    assert len(group["rows"]) == 6  # 3 prompt lengths x concurrency 4 and 16
    # the tolerances of tests/core/calibrate: in sample within 2%, cross-validated within 10%
    assert max(group["in_sample_mape"].values()) < 2.0
    assert max(group["cross_validated_mape"].values()) < 10.0
    fitted = replace(StepParams(**group["params"]), kernels=EMULATOR.kernels)
    # recovered: the refit predicts what the emulator's own parameters predict, within 2%
    runs = [r for f in FILES for r in load_runs(Path(f), _ns())]
    assert {r.parallel for r in runs} == {Parallel(tp=1, dp=8, ep=8)}  # the layout it served
    opts = SimOptions(kv_capacity_factor=EMULATOR_KV_FACTOR)
    tolerance = {"ttft_p50_ms": 0.02, "tpot_p50_ms": 0.02, "output_tok_per_s": 0.02}
    points = [point_for(run, opts, 0.0) for run in runs]
    for run, point in zip(runs, points, strict=True):
        truth, refit = predict(point, EMULATOR), predict(point, fitted)
        for metric, rel in tolerance.items():
            assert refit[metric] == pytest.approx(truth[metric], rel=rel), (run.id, metric)
    # concurrency 4 and 16 never fill the KV cache: no factor changes a step, so the refit
    # keeps moerun's own estimate (1) rather than whichever factor it tried first
    assert group["kv_capacity_factor"] == 1.0
    # With kernel tables, the tables price almost all of a step: the kernel scale and the
    # per-sequence overhead carry the fit, within 3%. The efficiencies price only what the
    # tables miss and are barely identified by these runs, so instead of them the step time
    # itself is checked, beyond the measured runs: decode of 1 to 256 sequences per rank at
    # 1k to 8k context, and prefill chunks of 512 to 8k tokens per rank, within 2%.
    for name in ("kernel_scale", "seq_overhead_s"):
        assert getattr(fitted, name) == pytest.approx(getattr(EMULATOR, name), rel=0.03), name
    assert fitted.step_overhead_s < 0.001  # the emulator's is 0: under 2% of a decode step
    shape = points[0].model.shape
    for batch in _batches():
        truth_s = step_time(shape, EMULATOR, batch, max)
        assert step_time(shape, fitted, batch, max) == pytest.approx(truth_s, rel=0.02), batch


def _batches() -> list[StepBatch]:
    """Steps of the 8 DP ranks together (the simulator's batches are per replica)."""
    out = []
    for per_rank in (1, 4, 16, 64, 256):
        for context in (1024, 8192):
            n = 8.0 * per_rank
            out.append(StepBatch(decode_seqs=n, decode_attended=n * context,
                                 decode_context=n * context))  # fmt: skip
    for tokens in (512, 2048, 8192):
        t = 8.0 * tokens
        pos = t * (tokens + 1) / 2  # one fresh prompt per rank: positions 1..tokens
        out.append(StepBatch(prefill_tokens=t, prefill_seqs=8, prefill_attended=pos,
                             prefill_context=pos, prefill_logits=8))  # fmt: skip
    return out
