"""A prediction for a model architecture its profile was not fitted on carries the error
measured for such predictions (rows of catalog/data/extrapolation_error.yaml with
`to_model_type`), not the fitted runs' own error."""

from __future__ import annotations

from dataclasses import replace
from importlib import resources

import pytest
import yaml

from moerun.catalog.perf.calibration import (
    calibration_for,
    for_model,
    load_profiles,
    profile_from_dict,
    profile_to_dict,
)
from moerun.catalog.perf.extrapolation import (
    ExtrapolationError,
    extrapolation_band,
    held_out_band,
    model_band,
    parse_extrapolation,
)
from moerun.catalog.perf.measurements import MeasuredRun
from moerun.commands.calibrate import model_extrapolation_runs
from moerun.core.calibrate.calibration import Calibration
from moerun.core.deploy.parallel import Parallel
from moerun.core.perf.step_time import StepParams
from moerun.core.plan.recommend import Performance
from moerun.errors import CatalogError

GPU_ROW = ExtrapolationError("sglang", "h200_sxm-sglang v2", "h200_sxm", "b200_sxm", ("X",),
                             {"tpot_p50_ms": 8.0})  # fmt: skip
GLM = ExtrapolationError("sglang", "h200_sxm-sglang v2", "h200_sxm", "h200_sxm", ("G1", "G2"),
                         {"tpot_p50_ms": 25.0, "output_tok_per_s": 16.0},
                         ("deepseek_v3",), "glm_moe_dsa")  # fmt: skip
QWEN = ExtrapolationError("sglang", "b200_sxm-sglang v2", "b200_sxm", "b200_sxm", ("Q",),
                          {"tpot_p50_ms": 40.0, "ttft_p50_ms": 12.0},
                          ("deepseek_v3",), "qwen3_moe")  # fmt: skip
ROWS = (GPU_ROW, GLM, QWEN)


def test_the_measured_architecture_is_its_own_band() -> None:
    band, basis = model_band(ROWS, "2026-12-04", "sglang", "h200_sxm", "glm_moe_dsa")
    assert band == {"tpot_p50_ms": 25.0, "output_tok_per_s": 16.0}
    assert (
        "fitted on deepseek_v3 runs" in basis and "2 h200_sxm sglang runs of glm_moe_dsa" in basis
    )


def test_an_unmeasured_architecture_takes_the_largest_measured_error_per_metric() -> None:
    band, basis = model_band(ROWS, "2026-12-04", "sglang", "h200_sxm", "llama")
    assert band == {"tpot_p50_ms": 40.0, "ttft_p50_ms": 12.0, "output_tok_per_s": 16.0}
    assert "largest" in basis and "llama on h200_sxm itself not measured" in basis
    band, basis = model_band(ROWS, "2026-12-04", "vllm", "h200_sxm", "deepseek_v3")
    assert band == {} and "no vllm profile" in basis and "deepseek_v3" in basis


def test_cross_model_rows_do_not_count_as_cross_gpu_ones() -> None:
    band, _ = extrapolation_band(ROWS, "2026-12-04", "sglang", "h200_sxm", "h100_sxm")
    assert band == {"tpot_p50_ms": 8.0}


def _profile_cal(types: tuple[str, ...], cv: dict[str, float]) -> Calibration:
    prof = load_profiles()[0]
    prof = replace(prof, model_types=types, cross_validated_mape=cv)
    return Calibration("calibrated", StepParams(), prof, "fitted")


def test_the_band_keeps_only_metrics_measured_on_another_model_each_at_the_larger_error() -> None:
    cal = _profile_cal(("deepseek_v3",), {"tpot_p50_ms": 2.0, "output_tok_per_s": 30.0,
                                           "ttft_p50_ms": 5.0})  # fmt: skip
    other = replace(cal, model_band_pct={"tpot_p50_ms": 25.0, "output_tok_per_s": 16.0},
                    model_basis="measured")  # fmt: skip
    # TTFT was measured only on the fitted model: it is dropped, not carried over
    assert other.error_band_pct == {"tpot_p50_ms": 25.0, "output_tok_per_s": 30.0}
    assert other.model_note == "fitted on deepseek_v3 runs"
    # the throughput band is the fitted runs' own (larger): the basis names both
    assert other.error_band_basis == (
        "measured; cross-validated error of this GPU and engine's runs (larger of the two)"
    )
    none = replace(cal, model_band_pct={}, model_basis="no vllm profile has been measured")
    assert none.error_band_pct == {}
    assert none.error_band_basis.startswith("none measured: no vllm profile")
    assert cal.error_band_pct == cal.profile.cross_validated_mape and cal.model_note == ""


def test_for_model_leaves_a_served_or_unknown_architecture_alone() -> None:
    cal = _profile_cal(("deepseek_v3",), {"tpot_p50_ms": 2.0})
    assert for_model(cal, "sglang", "deepseek_v3") is cal
    assert for_model(cal, "sglang", None) is cal
    assert (
        for_model(_profile_cal((), {"tpot_p50_ms": 2.0}), "sglang", "glm_moe_dsa").model_basis == ""
    )
    assert for_model(cal, "sglang", "glm_moe_dsa").model_extrapolated


def _stored_cross_model() -> list[dict]:
    text = resources.files("moerun.catalog").joinpath("data/extrapolation_error.yaml").read_text()
    rows = yaml.safe_load(text)["rows"]
    return [
        r
        for r in rows
        if r.get("to_model_type") and r["to_model_type"] not in r["from_model_types"]
    ]


def test_calibration_for_a_model_the_profile_did_not_serve_carries_the_stored_band() -> None:
    rows = [r for r in _stored_cross_model() if r["from_gpu"] == "h200_sxm"
            and r["engine"] == "sglang" and r["to_model_type"] == "glm_moe_dsa"]  # fmt: skip
    assert len(rows) == 1, "the catalog measures the H200 SGLang profile on GLM-5 runs"
    own = calibration_for("h200_sxm", "sglang")
    assert own.profile is not None and own.profile.model_types == ("deepseek_v3",)
    glm = calibration_for("h200_sxm", "sglang", "glm_moe_dsa")
    want = {m: max(v, own.error_band_pct.get(m, 0.0))
            for m, v in rows[0]["median_ape_pct"].items()}  # fmt: skip
    assert glm.error_band_pct == pytest.approx(want)
    # the fitted DeepSeek runs' own band is far tighter than what GLM-5 runs measured
    assert glm.error_band_pct["output_tok_per_s"] > own.error_band_pct["output_tok_per_s"]
    assert calibration_for("h200_sxm", "sglang", "deepseek_v3").error_band_pct == (
        own.error_band_pct
    )
    assert calibration_for("h200_sxm", "vllm", "deepseek_v3").error_band_pct == {}


def _run(rid: str, model: str, mtp: int = 0, accept: float | None = None,
         gpu: str = "h200_sxm", conc: int | None = 8) -> MeasuredRun:  # fmt: skip
    return MeasuredRun(
        id=rid, model=model, weights="fp8", gpu=gpu, num_gpus=8, engine="sglang",
        engine_version="x", parallel=Parallel(tp=8), mtp_tokens=mtp, isl=1024, osl=1024,
        concurrency=conc, num_prompts=80, measured={"tpot_p50_ms": 10.0}, source="s",
        mtp_accept_len=accept,
    )  # fmt: skip


def test_the_runs_measured_are_unfitted_runs_of_its_gpu_with_a_known_acceptance() -> None:
    prof = replace(
        next(p for p in load_profiles() if p.id == "h200_sxm-sglang"), model_types=("deepseek_v3",)
    )
    runs = [
        _run(prof.fitted_on[0], "deepseek-v3"),  # fitted on: not a measurement of its error
        _run("served", "deepseek-v3"),
        _run("glm", "glm-5-fp8"),
        _run("glm-mtp-known", "glm-5.2-fp8", mtp=3, accept=2.9),
        _run("glm-mtp-unknown", "glm-5-fp8", mtp=3),
        _run("other-gpu", "glm-5-fp8", gpu="b200_sxm"),
        _run("offline", "glm-5-fp8", conc=None),
    ]
    assert [r.id for r in model_extrapolation_runs(runs, prof)] == [
        "served",
        "glm",
        "glm-mtp-known",
    ]


def test_a_profile_keeps_its_model_types_through_yaml() -> None:
    prof = replace(load_profiles()[0], model_types=("glm_moe_dsa",))
    back = profile_from_dict(yaml.safe_load(yaml.safe_dump(profile_to_dict(prof))), "x")
    assert back.model_types == ("glm_moe_dsa",)
    raw = profile_to_dict(replace(prof, model_types=()))
    assert "model_types" not in raw and profile_from_dict(raw, "x").model_types == ()


def test_a_cross_model_row_must_name_another_architecture_on_its_own_gpu() -> None:
    good = ("rows:\n- {engine: sglang, profile: p v1, from_gpu: a, to_gpu: a, runs: [X],\n"
            "   from_model_types: [deepseek_v3], to_model_type: glm_moe_dsa,\n"
            "   median_ape_pct: {tpot_p50_ms: 1.0}}\n")  # fmt: skip
    rows, _ = parse_extrapolation(good)
    assert rows[0].cross_model and rows[0].from_model_types == ("deepseek_v3",)
    held, _ = parse_extrapolation(good.replace("type: glm_moe_dsa", "type: deepseek_v3"))
    assert held[0].held_out and not held[0].cross_model
    with pytest.raises(CatalogError, match="needs the from_model_types"):
        parse_extrapolation(good.replace("from_model_types: [deepseek_v3], ", ""))
    with pytest.raises(CatalogError, match="own GPU"):
        parse_extrapolation(good.replace("to_gpu: a", "to_gpu: b"))


def test_the_plan_shows_a_median_band_where_no_p99_was_measured_and_says_so() -> None:
    perf = Performance(1.0, 100.0, 10.0, "simulated", "calibrated",
                       {"tpot_p50_ms": 17.0, "ttft_p99_ms": 30.0, "ttft_p50_ms": 9.0,
                        "output_tok_per_s": 13.0},
                       calibration_models="fitted on deepseek_v3 runs")  # fmt: skip
    assert perf.band_shown() == [("median TPOT", 17.0), ("p99 TTFT", 30.0), ("throughput", 13.0)]
    assert perf.calibration_label() == "calibration calibrated, fitted on deepseek_v3 runs"
    assert Performance(1.0, None, None, "analytic", "calibrated", {}).band_shown() == []


HELD = ExtrapolationError("sglang", "h200_sxm-sglang v2", "h200_sxm", "h200_sxm", ("A", "B"),
                          {"tpot_mean_ms": 2.4, "ttft_p99_ms": 68.0},
                          ("deepseek_v3",), "deepseek_v3")  # fmt: skip


def test_a_profile_never_cross_validated_takes_its_held_out_error() -> None:
    band, basis = held_out_band((*ROWS, HELD), "d", "sglang", "h200_sxm", "h200_sxm-sglang v2")
    assert band == {"tpot_mean_ms": 2.4, "ttft_p99_ms": 68.0}
    assert "2 h200_sxm sglang runs of deepseek_v3" in basis and "one input length" in basis
    # the cross-model row of the same profile is not its held-out error
    assert held_out_band(ROWS, "d", "sglang", "h200_sxm", "h200_sxm-sglang v2")[0] == {}
    cal = replace(_profile_cal(("deepseek_v3",), {}), held_out_band_pct=band, held_out_basis=basis)
    assert cal.error_band_pct == band and cal.error_band_basis == basis
    assert not cal.band_cross_validated
    assert replace(cal, held_out_band_pct={}).error_band_basis.startswith("none measured")
    cv = _profile_cal(("deepseek_v3",), {"tpot_p50_ms": 3.0})
    assert cv.band_cross_validated and cv.error_band_pct == {"tpot_p50_ms": 3.0}


def test_the_catalogs_single_length_profiles_carry_their_held_out_band() -> None:
    rows = [r for r in _stored_held_out() if r["profile"] == "h200_sxm-sglang v2"]
    assert len(rows) == 1
    cal = calibration_for("h200_sxm", "sglang")
    assert cal.profile is not None and cal.profile.cross_validated_mape == {}
    assert cal.error_band_pct == pytest.approx(rows[0]["median_ape_pct"])
    assert "IXH-01" not in rows[0]["runs"] and "IXH-06" in rows[0]["runs"]


def _stored_held_out() -> list[dict]:
    text = resources.files("moerun.catalog").joinpath("data/extrapolation_error.yaml").read_text()
    rows = yaml.safe_load(text)["rows"]
    return [r for r in rows if r.get("to_model_type") in (r.get("from_model_types") or [])]
