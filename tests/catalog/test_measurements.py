"""Measured runs: the catalog CSVs and `moerun bench` results read into one shape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from moerun.catalog.measurements import builtin_measurements, load_measurements
from moerun.core.deploy.parallel import Parallel
from moerun.errors import CatalogError

SUMMARY = {
    "ttft_ms": {"mean": 1, "p50": 900.0, "p90": 1, "p99": 1200.0},
    "tpot_ms": {"mean": 1, "p50": 26.0, "p90": 1, "p99": 30.0},
    "output_tok_per_s": 230.0,
    "num_requests": 40,
}


def bench_file(tmp_path: Path, **run: object) -> Path:
    data = {
        "schema": "moerun.bench/1",
        "deployment": {
            "model": "glm-5.1-fp8",
            "gpu": "h200_sxm",
            "num_gpus": 8,
            "weights": "fp8",
            "kv_dtype": "fp8",
            "engine": "vllm",
            "tp": None,
            "dp": None,
            "ep": None,
            "pp": None,
            "mtp": 1,
        },
        "runs": [
            {
                "label": "c8",
                "interrupted": False,
                "summary": SUMMARY,
                "workload": {
                    "workload": "fixed",
                    "isl": 2048,
                    "osl": 128,
                    "concurrency": 8,
                    "num_requests": 40,
                },
                **run,
            }
        ],
    }
    path = tmp_path / "res.json"
    path.write_text(json.dumps(data))
    return path


def test_builtin_rows_parse_with_their_layouts() -> None:
    runs = {r.id: r for r in builtin_measurements()}
    assert runs["G5-01"].parallel == Parallel(tp=8) and runs["G5-01"].kv_dtype == "bf16"
    assert runs["Q1-h200_sxm"].parallel == Parallel(tp=1, dp=8, ep=8)
    assert runs["Q1-h200_sxm"].concurrency is None and runs["G5-52"].concurrency == 64


def test_bench_results_become_measured_runs(tmp_path: Path) -> None:
    (run,) = load_measurements(bench_file(tmp_path))
    assert (run.model, run.gpu, run.parallel, run.mtp_tokens) == (
        "glm-5.1-fp8",
        "h200_sxm",
        Parallel(tp=8),
        1,
    )
    assert run.measured["ttft_p50_ms"] == 900.0 and run.measured["output_tok_per_s"] == 230.0
    assert (run.isl, run.osl, run.concurrency, run.kv_dtype) == (2048, 128, 8, "fp8")


def test_interrupted_or_open_loop_runs_are_refused(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="interrupted"):
        load_measurements(bench_file(tmp_path, interrupted=True))
    poisson = {"workload": "fixed", "isl": 10, "osl": 10, "request_rate": 2.0, "concurrency": None}
    with pytest.raises(CatalogError, match="closed-loop"):
        load_measurements(bench_file(tmp_path, workload=poisson))


def test_profile_round_trip_keeps_the_kv_factor(tmp_path: Path) -> None:
    from moerun.catalog.calibration import load_profiles, save_profile
    from moerun.core.calibrate.calibration import CalibrationProfile
    from moerun.core.perf.step_time import StepParams

    prof = CalibrationProfile(
        "g-e", 3, "g", "e", "x", StepParams(), 0.8, ("a",), {}, {}, "d", "s", 0.75
    )
    save_profile(prof, tmp_path)
    (back,) = load_profiles(tmp_path)
    assert back == prof
