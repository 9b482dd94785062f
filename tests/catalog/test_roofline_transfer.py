"""A GPU without kernel tables is priced by the roofline at the fractions of peak (and the
per-step floor) that the profile's own GPU's measured kernels reach, read off reference steps."""

from __future__ import annotations

from dataclasses import replace
from importlib import resources

import pytest
import yaml

from moerun.catalog.engines import get_engine, get_reserve
from moerun.catalog.gpus import get_gpu
from moerun.catalog.models import load_spec
from moerun.catalog.perf.calibration import calibration_for, load_profiles, with_gpu_measurements
from moerun.catalog.perf.extrapolation import (
    ExtrapolationError,
    extrapolation_band,
    parse_extrapolation,
)
from moerun.catalog.perf.roofline_transfer import read_off, transfer
from moerun.core.deploy.deployment import Deployment
from moerun.core.deploy.parallel import Parallel
from moerun.core.perf.step_time import StepBatch, StepModel, StepParams
from moerun.errors import CatalogError


def _dep(model: str = "glm-5-fp8", gpu: str = "h200_sxm", tp: int = 8) -> Deployment:
    return Deployment(model=load_spec(model), gpu=get_gpu(gpu), num_gpus=tp,
                      engine=get_engine("sglang"), reserve=get_reserve(), weights="fp8",
                      kv_dtype="bf16", parallel=Parallel(tp=tp))  # fmt: skip


def test_a_roofline_with_known_fractions_is_read_back() -> None:
    # the "measured" side is itself a roofline with chosen fractions: reading it off must give
    # them back; its own 3 ms per-step overhead (CPU work the profile already carries) is left
    # out of both sides, so no floor is read off
    known = StepParams(gemm_efficiency=0.31, mem_efficiency=0.55, attn_efficiency=0.17,
                       step_overhead_s=0.003, seq_overhead_s=4e-5)  # fmt: skip
    t = read_off("h200_sxm", [_dep()], known)
    assert t.efficiencies == pytest.approx(
        {"gemm_efficiency": 0.31, "mem_efficiency": 0.55, "attn_efficiency": 0.17}, rel=0.02
    )
    assert t.floor_s == pytest.approx(0.0, abs=1e-5)
    assert t.median_abs_pct < 0.5


def test_the_transfer_matches_the_tables_it_was_read_off() -> None:
    prof = next(p for p in load_profiles() if p.id == "h200_sxm-sglang" and p.version == 2)
    home = with_gpu_measurements(prof.params, "h200_sxm", "sglang")
    t = transfer(prof, home, "glm_moe_dsa")
    assert t is not None and t.gpu == "h200_sxm" and t.deployments == 1
    # on the reference GPU, the roofline at the transferred fractions lands near the tables
    tables = replace(home, step_overhead_s=0.0, seq_overhead_s=0.0)
    roof = t.apply(replace(tables, kernels=None))
    m = StepModel(_dep(), tables)
    for n in (1, 16, 64):
        b = StepBatch(decode_seqs=n, decode_attended=n * 2048, decode_context=n * 8192)
        assert m.with_params(roof).step_time_s(b) == pytest.approx(m.step_time_s(b), rel=0.35)
    # the floor is added to the profile's own per-step overhead, not put in its place
    base = StepParams(step_overhead_s=0.002)
    assert t.apply(base).step_overhead_s == pytest.approx(0.002 + t.floor_s)
    assert t.apply(base).mem_efficiency == t.efficiencies["mem_efficiency"]


def test_a_gpu_without_tables_is_priced_at_the_transferred_fractions() -> None:
    cal = calibration_for("mi355x", "sglang", "glm_moe_dsa")
    prof = cal.profile
    assert cal.status == "extrapolated" and prof is not None and cal.params.kernels is None
    t = transfer(prof, with_gpu_measurements(prof.params, prof.gpu, "sglang"), "glm_moe_dsa")
    assert t is not None
    for name, value in t.efficiencies.items():
        assert getattr(cal.params, name) == value
    # the floor, and GLM-5's per-step residual over the DeepSeek runs the profile was fitted
    # on where the catalog measured one for the profile's engine version
    text = resources.files("moerun.catalog").joinpath("data/architecture_residual.yaml")
    rows = yaml.safe_load(text.read_text())["rows"]
    extra = sum(
        r["step_overhead_s"]
        for r in rows
        if (r["engine"], r["engine_version"], r["to_model_type"])
        == ("sglang", prof.engine_version, "glm_moe_dsa")
        and r["from_model_type"] in prof.model_types
    )
    assert cal.params.step_overhead_s == pytest.approx(
        prof.params.step_overhead_s + t.floor_s + extra
    )
    assert "mi355x has no kernel tables" in cal.note
    # its band: measured on runs of a GPU without tables (the catalog's MI355X rows)
    assert "mi355x" in cal.extrapolation_basis and cal.extrapolation_band_pct
    # the transfer makes the GPU slower than the roofline at the profile's unfitted defaults
    dep = _dep(gpu="mi355x", tp=4)
    b = StepBatch(decode_seqs=4, decode_attended=4 * 2048, decode_context=4 * 8192)
    default = replace(prof.params, kernels=None)
    assert StepModel(dep, cal.params).step_time_s(b) > StepModel(dep, default).step_time_s(b)


def test_gpus_without_tables_take_bands_measured_on_gpus_without_tables() -> None:
    nvidia = ExtrapolationError("sglang", "p v1", "h200_sxm", "b200_sxm", ("X",),
                                {"tpot_p50_ms": 8.0})  # fmt: skip
    amd = ExtrapolationError("sglang", "p v1", "h200_sxm", "mi355x", ("Y",),
                             {"tpot_p50_ms": 40.0}, to_tables=False)  # fmt: skip
    rows = (nvidia, amd)
    assert extrapolation_band(rows, "d", "sglang", "h200_sxm", "h100_sxm")[0] == {
        "tpot_p50_ms": 8.0
    }
    band, basis = extrapolation_band(rows, "d", "sglang", "h200_sxm", "mi300x", tables=False)
    assert band == {"tpot_p50_ms": 40.0} and "mi300x itself not measured" in basis
    band, basis = extrapolation_band((nvidia,), "d", "sglang", "h200_sxm", "mi300x", tables=False)
    assert band == {} and "without kernel tables" in basis


def test_a_row_says_plainly_whether_its_gpu_has_tables() -> None:
    row = ("rows:\n- {engine: sglang, profile: p v1, from_gpu: a, to_gpu: b, runs: [X],\n"
           "   median_ape_pct: {tpot_p50_ms: 1.0}}\n")  # fmt: skip
    assert parse_extrapolation(row)[0][0].to_tables
    no = row.replace("runs: [X]", "to_tables: false, runs: [X]")
    assert not parse_extrapolation(no)[0][0].to_tables
    with pytest.raises(CatalogError, match="to_tables must be true or false"):
        parse_extrapolation(row.replace("runs: [X]", "to_tables: 'false', runs: [X]"))
