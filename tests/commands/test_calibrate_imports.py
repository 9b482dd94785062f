"""`moerun calibrate` on GuideLLM results measured against `moerun emulate`: the refit recovers
the parameters the emulator ran with (issue 15's acceptance)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from moerun.cli import main
from moerun.commands.calibration_inputs import load_runs
from moerun.commands.calibration_points import point_for
from moerun.core.calibrate.calibration import predict
from moerun.core.perf.step_time import StepParams
from moerun.core.sim.build import SimOptions

FIXTURES = Path(__file__).parents[1] / "fixtures" / "imports"
FILES = [str(FIXTURES / f"guidellm-isl{n}.json") for n in (512, 1024, 2048)]
FLAGS = ["--model", "glm-5.1", "--gpu", "h200_sxm", "--num-gpus", "8", "--time-scale", "0.1"]
# What the emulator ran with when scripts/make_guidellm_fixture.py wrote the fixtures: the
# catalog's h200_sxm-vllm calibration v1 (params and KV capacity factor 0.7; no MTP).
EMULATOR = StepParams(
    gemm_efficiency=0.215259701093765,
    mem_efficiency=0.2783168011112682,
    attn_efficiency=0.055744430646278376,
    step_overhead_s=0.01614749593727002,
    seq_overhead_s=5e-05,
)
EMULATOR_KV_FACTOR = 0.7


@pytest.mark.xfail(
    strict=True,
    reason="open defect found at the last merge: these GuideLLM fixtures were recorded from "
    "the emulator before the kernel-table step model and the most-KV default layout landed; "
    "regenerated against the merged emulator, `bench --compare-sim` still reads TTFT 0.38x and "
    "throughput 1.16x at concurrency 16: emulator and simulate disagree here (issues 12, 15)",
)
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
    fitted = StepParams(**group["params"])
    # recovered: the refit predicts what the emulator's own parameters predict, within 2%
    ns = argparse.Namespace(
        time_scale=0.1, model="glm-5.1", gpu="h200_sxm", num_gpus=8, weights="fp8",
        kv_dtype="fp8", engine="vllm", tp=None, dp=None, ep=None, pp=None, mtp=0,
        max_context=None, mem_fraction=None, max_num_batched_tokens=None,
    )  # fmt: skip
    runs = [r for f in FILES for r in load_runs(Path(f), ns)]
    opts = SimOptions(kv_capacity_factor=EMULATOR_KV_FACTOR)
    tolerance = {"ttft_p50_ms": 0.02, "tpot_p50_ms": 0.02, "output_tok_per_s": 0.02}
    for run in runs:
        point = point_for(run, opts, 0.0)
        truth, refit = predict(point, EMULATOR), predict(point, fitted)
        for metric, rel in tolerance.items():
            assert refit[metric] == pytest.approx(truth[metric], rel=rel), (run.id, metric)
    assert group["kv_capacity_factor"] == EMULATOR_KV_FACTOR
    for name in ("gemm_efficiency", "mem_efficiency", "attn_efficiency", "step_overhead_s"):
        assert getattr(fitted, name) == pytest.approx(getattr(EMULATOR, name), rel=0.03), name
