"""A prediction for a kind of layout its profile's runs did not use (attention DP, several
nodes, prefill/decode disaggregation) carries the error measured for such predictions (rows
of catalog/data/extrapolation_error.yaml with `to_layout`), or says none was measured."""

from __future__ import annotations

from dataclasses import replace
from importlib import resources

import pytest
import yaml

from moerun.catalog.perf.calibration import calibration_for, load_profiles
from moerun.catalog.perf.extrapolation import (
    ExtrapolationError,
    extrapolation_band,
    layout_band,
    parse_extrapolation,
)
from moerun.core.calibrate.calibration import Calibration
from moerun.core.deploy.parallel import Parallel
from moerun.core.perf.step_time import StepParams
from moerun.errors import CatalogError
from tests.conftest import make_deployment
from tests.fixtures.plan import run_plan

DP_H200 = ExtrapolationError("sglang", "h200_sxm-sglang v2", "h200_sxm", "h200_sxm", ("D1", "D2"),
                             {"tpot_p50_ms": 25.0, "output_tok_per_s": 3.0},
                             from_layouts=("single-node",), to_layout="attention-dp",
                             to_model_types=("glm_moe_dsa",))  # fmt: skip
DP_B200 = ExtrapolationError("sglang", "b200_sxm-sglang v2", "b200_sxm", "b200_sxm", ("D3",),
                             {"tpot_p50_ms": 60.0, "ttft_p50_ms": 14.0},
                             from_layouts=("single-node",), to_layout="attention-dp")  # fmt: skip
GPU_ROW = ExtrapolationError("sglang", "h200_sxm-sglang v2", "h200_sxm", "b200_sxm", ("X",),
                             {"tpot_p50_ms": 8.0})  # fmt: skip
ROWS = (GPU_ROW, DP_H200, DP_B200)


@pytest.mark.parametrize(
    ("gpu", "num_gpus", "parallel", "disaggregated", "kind"),
    [
        ("h200_sxm", 8, Parallel(tp=8), False, "single-node"),
        ("h200_sxm", 8, Parallel(tp=8, ep=8), False, "single-node"),
        ("h200_sxm", 8, Parallel(tp=1, dp=8, ep=8), False, "attention-dp"),
        ("h200_sxm", 16, Parallel(tp=8, dp=2), False, "multi-node"),
        ("h200_sxm", 16, Parallel(tp=8, pp=2), False, "multi-node"),
        # GB200 NVL72: 4 GPUs a tray, 72 in one NVLink domain: 32 GPUs are one domain
        ("gb200", 32, Parallel(tp=1, dp=32, ep=32), False, "attention-dp"),
        ("h200_sxm", 8, Parallel(tp=8), True, "pd-disaggregated"),
    ],
)
def test_layout_kind(
    gpu: str, num_gpus: int, parallel: Parallel, disaggregated: bool, kind: str
) -> None:
    dep = make_deployment(gpu=gpu, num_gpus=num_gpus, parallel=parallel)
    assert dep.layout_kind(disaggregated) == kind


def test_the_measured_layout_is_its_own_band_and_others_take_the_largest() -> None:
    band, basis = layout_band(ROWS, "2026-12-04", "sglang", "h200_sxm", "attention-dp")
    assert band == {"tpot_p50_ms": 25.0, "output_tok_per_s": 3.0}
    assert "fitted on single-node runs" in basis and "2 h200_sxm sglang runs" in basis
    assert "glm_moe_dsa" in basis
    band, basis = layout_band(ROWS, "2026-12-04", "sglang", "h100_sxm", "attention-dp")
    assert band == {"tpot_p50_ms": 60.0, "output_tok_per_s": 3.0, "ttft_p50_ms": 14.0}
    assert "largest" in basis and "h100_sxm itself not measured" in basis
    band, basis = layout_band(ROWS, "2026-12-04", "sglang", "h200_sxm", "multi-node")
    assert band == {} and "multi-node" in basis and "no sglang profile" in basis
    # a cross-layout row is not a cross-GPU row
    band, _ = extrapolation_band(ROWS, "2026-12-04", "sglang", "b200_sxm", "h100_sxm")
    assert band == {"tpot_p50_ms": 8.0}


def _cal(cv: dict[str, float]) -> Calibration:
    prof = replace(load_profiles()[0], cross_validated_mape=cv, layouts=("single-node",))
    return Calibration("calibrated", StepParams(), prof, "fitted")


def test_a_band_keeps_the_metrics_measured_every_way_it_extrapolates_at_the_largest() -> None:
    cal = _cal({"tpot_p50_ms": 2.0, "output_tok_per_s": 30.0, "ttft_p50_ms": 5.0})
    dp = replace(cal, layout_band_pct={"tpot_p50_ms": 25.0, "ttft_p50_ms": 4.0},
                 layout_basis="dp measured")  # fmt: skip
    assert dp.error_band_pct == {"tpot_p50_ms": 25.0, "ttft_p50_ms": 5.0}
    both = replace(dp, model_band_pct={"tpot_p50_ms": 40.0, "output_tok_per_s": 16.0},
                   model_basis="model measured")  # fmt: skip
    # TPOT alone was measured both ways (another model, another layout): 40 is the largest
    assert both.error_band_pct == {"tpot_p50_ms": 40.0}
    assert both.error_band_basis.startswith("model measured; dp measured; cross-validated")
    never = replace(dp, layout_band_pct={}, layout_basis="no sglang profile measured")
    assert never.error_band_pct == {}
    assert never.error_band_basis == "none measured: no sglang profile measured"


def _stored_layout_rows() -> list[dict]:
    text = resources.files("moerun.catalog").joinpath("data/extrapolation_error.yaml").read_text()
    return [r for r in yaml.safe_load(text)["rows"] if r.get("to_layout")]


def test_calibration_for_a_layout_its_runs_did_not_use_carries_the_stored_band() -> None:
    rows = [r for r in _stored_layout_rows() if r["from_gpu"] == "h200_sxm"
            and r["engine"] == "sglang" and r["to_layout"] == "attention-dp"]  # fmt: skip
    assert len(rows) == 1, "the catalog measures the H200 SGLang profile on attention-DP runs"
    own = calibration_for("h200_sxm", "sglang", "deepseek_v3", "single-node")
    assert own.profile is not None and own.profile.layouts == ("single-node",)
    assert not own.layout_extrapolated
    dp = calibration_for("h200_sxm", "sglang", "deepseek_v3", "attention-dp")
    want = {m: max(v, own.error_band_pct.get(m, 0.0))
            for m, v in rows[0]["median_ape_pct"].items()}  # fmt: skip
    assert dp.error_band_pct == pytest.approx(want)
    assert "fitted on single-node layouts, used for attention-dp" in dp.note
    assert dp.layout_note == "fitted on single-node layouts" and own.layout_note == ""
    # nothing was measured on several nodes: no band, and the basis says so
    multi = calibration_for("h200_sxm", "sglang", "deepseek_v3", "multi-node")
    assert multi.error_band_pct == {}
    assert multi.error_band_basis.startswith("none measured") and "multi-node" in (
        multi.error_band_basis
    )
    assert calibration_for("h200_sxm", "sglang", "deepseek_v3").error_band_pct == (
        own.error_band_pct
    )


def test_the_plan_prices_each_layout_with_its_kind_band() -> None:
    r = run_plan("chat")
    screened = r.search.feasible + r.search.infeasible
    kinds = set()
    for s in screened:
        kind = s.dep.layout_kind(s.disaggregation is not None)
        kinds.add(kind)
        prof = s.calibration.profile
        assert prof is not None
        assert s.calibration.layout_extrapolated == (kind not in prof.layouts), (kind, s.dep)
    assert {"single-node", "attention-dp", "multi-node"} <= kinds
    # and the options say which kinds of layout their profile's runs used
    for o in r.options:
        sh = o.self_hosted
        if sh is not None:
            kind = sh.screened.dep.layout_kind(sh.screened.disaggregation is not None)
            label = sh.perf.calibration_label()
            assert ("fitted on single-node layouts" in label) == (kind != "single-node"), label


def test_bad_layout_rows_are_refused() -> None:
    good = ("rows:\n- {engine: sglang, profile: p v1, from_gpu: a, to_gpu: a, runs: [X],\n"
            "   from_layouts: [single-node], to_layout: attention-dp,\n"
            "   median_ape_pct: {tpot_p50_ms: 1.0}}\n")  # fmt: skip
    rows, _ = parse_extrapolation(good)
    assert rows[0].cross_layout and rows[0].to_layout == "attention-dp"
    with pytest.raises(CatalogError, match="layout 'tp-dp' is not one of"):
        parse_extrapolation(good.replace("to_layout: attention-dp", "to_layout: tp-dp"))
    with pytest.raises(CatalogError, match="needs the from_layouts"):
        parse_extrapolation(good.replace("from_layouts: [single-node], ", ""))
    with pytest.raises(CatalogError, match="own GPU alone"):
        parse_extrapolation(good.replace("to_gpu: a", "to_gpu: b"))
