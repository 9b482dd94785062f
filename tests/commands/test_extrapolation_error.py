"""The stored extrapolation errors are what the model gives today: recomputed, each row and
median matches catalog/data/extrapolation_error.yaml (after a model change, rerun
`.venv/bin/python benchmarks/bench_accuracy.py --only-extrapolation --write-extrapolation`)."""

from __future__ import annotations

from importlib import resources

import pytest
import yaml

from moerun.commands.calibrate import (
    extrapolation_errors,
    extrapolation_runs,
    layout_extrapolation_errors,
    model_extrapolation_errors,
)


def test_the_stored_errors_are_reproduced() -> None:
    text = resources.files("moerun.catalog").joinpath("data/extrapolation_error.yaml").read_text()
    stored = yaml.safe_load(text)["rows"]
    got = extrapolation_errors() + model_extrapolation_errors() + layout_extrapolation_errors()

    def key(r: dict) -> tuple:
        return (r["profile"], r["to_gpu"], r.get("to_model_type"), r.get("to_layout"))

    assert [key(r) for r in got] == [key(r) for r in stored]
    # the three kinds are there: other GPUs' runs, the profiles' GPUs' runs of other models,
    # and of other kinds of layout
    assert any(r["to_gpu"] != r["from_gpu"] for r in got)
    assert any(r.get("to_model_type") for r in got) and any(r.get("to_layout") for r in got)
    for g, s in zip(got, stored, strict=True):
        assert g["runs"] == s["runs"]
        assert g.get("from_model_types") == s.get("from_model_types")
        assert g.get("from_layouts") == s.get("from_layouts")
        assert g.get("to_model_types") == s.get("to_model_types")
        assert g["median_ape_pct"] == pytest.approx(s["median_ape_pct"], abs=0.05)


def test_runs_with_mtp_or_offline_are_not_measured() -> None:
    from moerun.catalog.perf.measurements import all_catalog_measurements

    runs, _ = all_catalog_measurements()
    picked = extrapolation_runs(runs, "sglang", "b200_sxm")
    assert picked and all(r.gpu == "b200_sxm" and r.engine == "sglang" for r in picked)
    assert all(r.mtp_tokens == 0 and r.concurrency is not None for r in picked)
    # the ones left out exist: MTP runs of the same GPU and engine
    assert any(r.mtp_tokens for r in runs if (r.gpu, r.engine) == ("b200_sxm", "sglang"))
