"""Benchmark: prediction accuracy against every published measurement in the catalog.

Run: .venv/bin/python benchmarks/bench_accuracy.py
For each GLM-5 row (8x H200, vLLM): measured vs predicted TTFT (median, p99), TPOT (median)
and output throughput, predicted by a profile fitted on the other input lengths
(leave-one-input-length-out cross-validation), then the median absolute percentage errors.
The baseline, in the same run, is the pure roofline (the step-time model at the speed of
light, no calibration), which is what roofline-only planners report.
The Qwen3-235B rows (TensorRT-LLM offline throughput, 8x H200 / 8x B200) carry no target:
they are predicted with the H200 vLLM profile (extrapolated) and the error is reported.
"""

from __future__ import annotations

import numpy as np

from moerun.catalog.calibration import DEFAULT_MTP_ACCEPTANCE
from moerun.catalog.measurements import builtin_measurements
from moerun.commands.calibrate import calibrate_runs
from moerun.commands.calibration_points import point_for
from moerun.core.calibrate.calibration import predict
from moerun.core.perf.step_time import StepParams
from moerun.core.sim.build import SimOptions

METRICS = ("ttft_p50_ms", "ttft_p99_ms", "tpot_p50_ms", "output_tok_per_s")
TARGETS = {"tpot_p50_ms": 15.0, "output_tok_per_s": 15.0, "ttft_p50_ms": 25.0}


def ape(pred: float, meas: float) -> float:
    return abs(pred - meas) / meas * 100


def main() -> None:
    runs = builtin_measurements()
    glm = [r for r in runs if r.engine == "vllm"]
    report = calibrate_runs(glm, DEFAULT_MTP_ACCEPTANCE)
    (group,) = report["groups"]
    sol = StepParams.speed_of_light()
    points = {
        p.id: p
        for p in (point_for(r, SimOptions(mtp_acceptance=DEFAULT_MTP_ACCEPTANCE)) for r in glm)
    }
    print("GLM-5-FP8, 8x H200, vLLM: measured / cross-validated prediction / roofline")
    print(f"{'run':6} {'isl':>6} {'conc':>4}  " + "  ".join(f"{m:>26}" for m in METRICS))
    errs: dict[str, list[float]] = {m: [] for m in METRICS}
    base: dict[str, list[float]] = {m: [] for m in METRICS}
    for row, run in zip(group["rows"], glm, strict=True):
        roof = predict(points[row["id"]], sol)
        cells = []
        for m in METRICS:
            meas, cv = row["measured"][m], row["cross_validated"][m]
            errs[m].append(ape(cv, meas))
            base[m].append(ape(roof[m], meas))
            cells.append(f"{meas:>8,.0f} /{cv:>8,.0f} /{roof[m]:>7,.0f}")
        print(f"{row['id']:6} {run.isl:>6} {run.concurrency:>4}  " + "  ".join(cells))
    print("\nmedian absolute % error (cross-validated)   vs roofline baseline   ratio   target")
    for m in METRICS:
        e, b = float(np.median(errs[m])), float(np.median(base[m]))
        target = f"<= {TARGETS[m]:.0f}%" if m in TARGETS else "-"
        print(f"  {m:18} {e:8.1f}%                      {b:8.1f}%        {b / e:5.1f}x   {target}")
    print(
        "in-sample (all rows fitted):", {k: round(v, 1) for k, v in group["in_sample_mape"].items()}
    )

    print("\nQwen3-235B, TensorRT-LLM offline (no target; H200 vLLM profile, extrapolated):")
    params, factor = group["params"], group["kv_capacity_factor"]
    print(f"  (profile: KV capacity factor {factor}, {params})")
    for run in (r for r in runs if r.engine != "vllm"):
        p = point_for(run, SimOptions(mtp_acceptance=0.0, kv_capacity_factor=factor))
        pred = predict(p, params)["output_tok_per_s"]
        meas = run.measured["output_tok_per_s"]
        print(
            f"  {run.id:14} {run.gpu:9} isl {run.isl:>5} osl {run.osl:>5}: measured {meas:>9,.0f} "
            f"predicted {pred:>9,.0f} tok/s ({(pred - meas) / meas * 100:+.0f}%)"
        )


if __name__ == "__main__":
    main()
