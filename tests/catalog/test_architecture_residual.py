"""GLM-5's per-step residual over DeepSeek (catalog/data/architecture_residual.yaml): measured
on one GPU where both ran on one engine version and client, added where a profile of that
version fitted on DeepSeek predicts GLM-5, and never measured on the runs it was fitted on."""

from __future__ import annotations

from importlib import resources

import pytest
import yaml

from moerun.catalog.perf.architecture import parse_residuals, residual_for
from moerun.catalog.perf.calibration import calibration_for
from moerun.commands.calibrate import architecture_residual_rows
from moerun.errors import CatalogError


def _stored(name: str) -> list[dict]:
    text = resources.files("moerun.catalog").joinpath(f"data/{name}").read_text()
    return yaml.safe_load(text)["rows"]


def test_the_stored_residual_is_what_the_runs_give_today() -> None:
    # after a model change, rerun benchmarks/bench_accuracy.py --write-extrapolation
    got, stored = architecture_residual_rows(), _stored("architecture_residual.yaml")
    assert [(r["gpu"], r["engine_version"], r["to_model_type"]) for r in got] == [
        (r["gpu"], r["engine_version"], r["to_model_type"]) for r in stored
    ]
    assert stored, "InferenceX's B200 0.5.12 DeepSeek-R1 and GLM-5 runs give one"
    for g, s in zip(got, stored, strict=True):
        assert (g["base_runs"], g["runs"]) == (s["base_runs"], s["runs"])
        assert g["step_overhead_s"] == pytest.approx(s["step_overhead_s"], abs=2e-4)
        assert not set(g["base_runs"]) & set(g["runs"])


def test_a_profile_of_the_measured_version_adds_it_for_that_architecture_only() -> None:
    (row,) = [
        r for r in _stored("architecture_residual.yaml") if r["to_model_type"] == "glm_moe_dsa"
    ]
    # H200's profile: SGLang 0.5.12, fitted on DeepSeek-R1 runs (the same client)
    ds = calibration_for("h200_sxm", "sglang", "deepseek_v3")
    glm = calibration_for("h200_sxm", "sglang", "glm_moe_dsa")
    assert ds.profile is not None and ds.profile.engine_version == row["engine_version"]
    assert glm.params.step_overhead_s == pytest.approx(
        ds.params.step_overhead_s + row["step_overhead_s"]
    )
    assert "ms per step over deepseek_v3" in glm.note
    # everything else is the profile's
    assert glm.params.kernel_scale == ds.params.kernel_scale
    # B200's profile is the cookbook's 0.5.6.post1: the residual was not measured for it
    b_ds = calibration_for("b200_sxm", "sglang", "deepseek_v3")
    b_glm = calibration_for("b200_sxm", "sglang", "glm_moe_dsa")
    assert b_ds.profile is not None and b_ds.profile.engine_version != row["engine_version"]
    assert b_glm.params.step_overhead_s == b_ds.params.step_overhead_s
    # by hand: the rule's four conditions
    assert residual_for("sglang", "0.5.12", ("deepseek_v3",), "glm_moe_dsa") is not None
    assert residual_for("sglang", "0.5.12", ("deepseek_v3",), "deepseek_v3") is None
    assert residual_for("sglang", "0.5.9", ("deepseek_v3",), "glm_moe_dsa") is None
    assert residual_for("vllm", "0.5.12", ("deepseek_v3",), "glm_moe_dsa") is None
    assert residual_for("sglang", "0.5.12", ("qwen3_moe",), "glm_moe_dsa") is None


def test_no_stored_error_is_measured_on_the_runs_the_residual_was_fitted_on() -> None:
    (row,) = _stored("architecture_residual.yaml")
    fitted = set(row["runs"])
    for r in _stored("extrapolation_error.yaml"):
        # the H200 profile (0.5.12) prices GLM-5 with the residual: GXB measures nothing
        if r["profile"].startswith("h200_sxm-sglang"):
            assert not fitted & set(r["runs"]), r
    # the B200 profile (0.5.6.post1) does not use it: GXB still measure its cross-model error
    b200 = [
        r
        for r in _stored("extrapolation_error.yaml")
        if r["profile"].startswith("b200_sxm-sglang") and r.get("to_model_type") == "glm_moe_dsa"
    ]
    assert b200 and fitted <= set(b200[0]["runs"])


def test_bad_rows_are_refused() -> None:
    good = ("rows:\n- {engine: sglang, engine_version: '0.5.12', gpu: b200_sxm,\n"
            "   from_model_type: deepseek_v3, to_model_type: glm_moe_dsa,\n"
            "   base_runs: [A], runs: [B], step_overhead_s: 0.005}\n")  # fmt: skip
    (row,), _ = parse_residuals(good)
    assert row.step_overhead_s == 0.005 and "+5.0 ms per step" in row.describe()
    with pytest.raises(CatalogError, match="the same"):
        parse_residuals(good.replace("glm_moe_dsa", "deepseek_v3"))
    with pytest.raises(CatalogError, match="none of them shared"):
        parse_residuals(good.replace("runs: [B]", "runs: [A]"))
    with pytest.raises(CatalogError, match="not a per-step time"):
        parse_residuals(good.replace("0.005", "5.0"))
    with pytest.raises(CatalogError, match="step_overhead_s"):
        parse_residuals(good.replace(", step_overhead_s: 0.005", ""))
