"""Extrapolated predictions carry the measured error of extrapolating (catalog/data/
extrapolation_error.yaml), not their home profile's cross-validated error."""

from __future__ import annotations

from importlib import resources

import pytest
import yaml

from moerun.catalog.perf.calibration import calibration_for
from moerun.catalog.perf.extrapolation import (
    ExtrapolationError,
    extrapolation_band,
    parse_extrapolation,
)
from moerun.errors import CatalogError

A = ExtrapolationError("sglang", "h200_sxm-sglang v1", "h200_sxm", "b200_sxm", ("X",),
                       {"tpot_p50_ms": 10.0, "ttft_p50_ms": 30.0})  # fmt: skip
B = ExtrapolationError("sglang", "b200_sxm-sglang v2", "b200_sxm", "h200_sxm", ("Y",),
                       {"tpot_p50_ms": 20.0, "output_tok_per_s": 5.0})  # fmt: skip


def test_the_pair_measured_is_its_own_band() -> None:
    band, basis = extrapolation_band((A, B), "2026-12-04", "sglang", "h200_sxm", "b200_sxm")
    assert band == {"tpot_p50_ms": 10.0, "ttft_p50_ms": 30.0}
    assert "h200_sxm-sglang v1 on b200_sxm's 1 sglang runs" in basis


def test_an_unmeasured_pair_takes_the_largest_measured_error_per_metric() -> None:
    band, basis = extrapolation_band((A, B), "2026-12-04", "sglang", "h200_sxm", "h100_sxm")
    assert band == {"ttft_p50_ms": 30.0, "tpot_p50_ms": 20.0, "output_tok_per_s": 5.0}
    assert "largest" in basis and "h200_sxm to h100_sxm itself not measured" in basis
    band, basis = extrapolation_band((A, B), "2026-12-04", "vllm", "h200_sxm", "b200_sxm")
    assert band == {} and "no vllm profile" in basis


def _stored() -> list[dict]:
    text = resources.files("moerun.catalog").joinpath("data/extrapolation_error.yaml").read_text()
    return yaml.safe_load(text)["rows"]


def test_calibration_for_carries_the_band_only_when_it_extrapolates() -> None:
    # the cross-GPU rows onto GPUs with tables (a cross-model row names the architecture it
    # measured, a cross-layout row the layout; a GPU without tables has its own rows)
    rows = [
        r
        for r in _stored()
        if r["engine"] == "sglang"
        and not r.get("to_model_type")
        and not r.get("to_layout")
        and r.get("to_tables", True)
    ]
    assert rows, "the catalog measures SGLang's extrapolation"
    # H100 with SGLang has no profile: the largest stored error of each metric
    want = {}
    for r in rows:
        for m, v in r["median_ape_pct"].items():
            want[m] = max(want.get(m, 0.0), v)
    h100 = calibration_for("h100_sxm", "sglang")
    assert h100.status == "extrapolated"
    assert h100.error_band_pct == pytest.approx(want)
    assert "itself not measured" in str(h100.describe()["error_band_basis"])
    # vLLM has one GPU's runs: nothing measured, no band, and it says why
    b200 = calibration_for("b200_sxm", "vllm")
    assert b200.status == "extrapolated" and b200.error_band_pct == {}
    assert "no vllm profile" in str(b200.describe()["error_band_basis"])
    # a calibrated prediction keeps its own cross-validated error
    h200 = calibration_for("h200_sxm", "vllm")
    assert h200.profile is not None
    assert h200.error_band_pct == h200.profile.cross_validated_mape


def test_bad_rows_are_refused() -> None:
    good = ("rows:\n- {engine: sglang, profile: p v1, from_gpu: a, to_gpu: b, runs: [X],\n"
            "   median_ape_pct: {tpot_p50_ms: 1.0}}\n")  # fmt: skip
    rows, _ = parse_extrapolation(good)
    assert rows[0].median_ape_pct == {"tpot_p50_ms": 1.0}
    with pytest.raises(CatalogError, match="unknown metric"):
        parse_extrapolation(good.replace("tpot_p50_ms", "tpot_p42_ms"))
    with pytest.raises(CatalogError, match="no runs"):
        parse_extrapolation(good.replace("[X]", "[]"))
    with pytest.raises(CatalogError, match="not a mapping"):
        parse_extrapolation("- 1")
    with pytest.raises(CatalogError, match=r"extrapolation_error\.yaml: not valid YAML"):
        parse_extrapolation("rows: [")
