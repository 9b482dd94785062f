"""Accuracy guard: the cross-validated error of every fitted (GPU, engine) group stays within
the limits docs/performance-model.md documents (its "accuracy guard" table)."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from moerun.catalog.perf.calibration import calibration_for
from moerun.catalog.perf.measurements import MeasuredRun, builtin_measurements
from moerun.commands.calibration_points import point_for
from moerun.core.calibrate.calibration import cross_validate, median_ape, point_errors
from moerun.core.sim.build import SimOptions

DOC = Path(__file__).resolve().parents[2] / "docs" / "performance-model.md"


def documented_limits() -> dict[tuple[str, str], dict[str, float]]:
    """(gpu, engine) -> metric -> the documented limit, from the doc's guard table."""
    text = DOC.read_text()
    table = text.split("<!-- accuracy-guard -->", 1)[1].split("\n\n", 1)[0]
    limits: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    for gpu, engine, metric, limit in re.findall(
        r"^\| (\w+) \| (\w+) \| (\w+) \| ([\d.]+)% \|", table, flags=re.M
    ):
        limits[(gpu, engine)][metric] = float(limit)
    return dict(limits)


def fitted_groups() -> dict[tuple[str, str], list[MeasuredRun]]:
    groups: dict[tuple[str, str], list[MeasuredRun]] = defaultdict(list)
    for r in builtin_measurements():
        if r.engine in ("vllm", "sglang") and r.concurrency is not None and r.split == "fit":
            groups[(r.gpu, r.engine)].append(r)
    # cross-validation needs at least two input lengths
    return {k: v for k, v in groups.items() if len({r.isl for r in v}) > 1}


def test_every_fitted_group_is_guarded_and_within_its_limits() -> None:
    limits = documented_limits()
    groups = fitted_groups()
    assert groups and set(groups) <= set(limits), "a fitted group without documented limits"
    for key, runs in sorted(groups.items()):
        cal = calibration_for(*key)
        assert cal.status == "calibrated" and cal.profile is not None
        opts = SimOptions(params=cal.params, kv_capacity_factor=cal.kv_capacity_factor)
        points = [point_for(r, opts, cal.profile.mtp_acceptance) for r in runs]
        # refit as the profile was fitted: its held parameters stay at their values
        cv = median_ape(point_errors(points, cross_validate(points, cal.params, cal.profile.held)))
        for metric, limit in limits[key].items():
            assert cv[metric] <= limit, f"{key} {metric}: {cv[metric]:.1f}% > {limit}%"
