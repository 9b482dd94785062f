"""The H200 SGLang profile, fitted on InferenceX's 1k/1k DeepSeek-R1 runs, predicts the same
source's 8k/1k runs it never saw (a regression guard: limits sit just above today's errors)."""

from __future__ import annotations

import numpy as np

from moerun.catalog.perf.calibration import calibration_for
from moerun.catalog.perf.measurements import catalog_measurements
from moerun.commands.calibration_points import point_for
from moerun.core.calibrate.calibration import predict
from moerun.core.sim.build import SimOptions

# measured 2026-12-04 (profile v2, fitted at the runs' own token budget): output tok/s 1.0%,
# mean TTFT 12.2%, mean TPOT 2.0%
LIMITS = {"output_tok_per_s": 4.0, "ttft_mean_ms": 15.0, "tpot_mean_ms": 6.0}


def test_h200_sglang_profile_predicts_held_out_long_prompts() -> None:
    cal = calibration_for("h200_sxm", "sglang")
    assert cal.status == "calibrated" and cal.profile is not None
    runs = catalog_measurements(("deepseek-r1-fp8-8xh200-sglang-inferencex.csv",))
    held = [r for r in runs if r.split == "holdout"]
    assert {r.isl for r in held} == {8192} and not set(cal.profile.fitted_on) & {r.id for r in held}
    errors: dict[str, list[float]] = {}
    for r in held:
        opts = SimOptions(params=cal.params, kv_capacity_factor=cal.kv_capacity_factor)
        pred = predict(point_for(r, opts, 0.0), cal.params)
        for metric, measured in r.measured.items():
            errors.setdefault(metric, []).append(abs(pred[metric] - measured) / measured * 100)
    assert set(errors) == set(LIMITS)
    for metric, limit in LIMITS.items():
        assert float(np.median(errors[metric])) <= limit, metric
