"""Calibration profiles: versioned YAML files in the catalog (`data/calibration/*.yaml`),
written by `moerun calibrate` and read by every prediction."""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, fields, replace
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from moerun.catalog.gpus import get_gpu
from moerun.catalog.perf.architecture import residual_for, with_residual
from moerun.catalog.perf.extrapolation import (
    extrapolation_band,
    extrapolation_errors,
    held_out_band,
    layout_band,
    model_band,
)
from moerun.catalog.perf.kernels import load_kernel_tables
from moerun.catalog.perf.roofline_transfer import transfer
from moerun.core.calibrate.calibration import Calibration, CalibrationProfile, choose_calibration
from moerun.core.deploy.deployment import LAYOUT_KINDS
from moerun.core.perf.step_time import StepParams, with_values
from moerun.core.perf.tables import collective_constants
from moerun.errors import CatalogError

# Default MTP acceptance (probability each drafted token is accepted): DeepSeek-V3's
# technical report gives 85-90% acceptance for its second-token MTP prediction (sec. 5.4.3);
# GLM-5 uses the same MTP design. A stated default; pass --mtp-acceptance to override.
DEFAULT_MTP_ACCEPTANCE = 0.85
MTP_ACCEPTANCE_SOURCE = "DeepSeek-V3 Technical Report (arXiv 2412.19437), sec. 5.4.3: 85-90%"


def profile_dir() -> Path:
    """Where the catalog's profiles live (inside the installed package)."""
    return Path(str(resources.files("moerun.catalog").joinpath("data/calibration")))


def profile_from_dict(raw: dict[str, Any], where: str) -> CalibrationProfile:
    """A profile from its YAML mapping."""
    try:
        names = {f.name for f in fields(StepParams)} - {"kernels"}
        unknown = set(raw["params"]) - names
        if unknown:
            raise CatalogError(f"{where}: params: unknown field(s) {sorted(unknown)}")
        return CalibrationProfile(
            id=str(raw["id"]),
            version=int(raw["version"]),
            gpu=str(raw["gpu"]),
            engine=str(raw["engine"]),
            engine_version=str(raw.get("engine_version", "unknown")),
            params=with_values(StepParams(), {k: float(v) for k, v in raw["params"].items()}),
            mtp_acceptance=float(raw.get("mtp_acceptance", DEFAULT_MTP_ACCEPTANCE)),
            fitted_on=tuple(str(x) for x in raw.get("fitted_on", [])),
            in_sample_mape={k: float(v) for k, v in raw.get("in_sample_mape", {}).items()},
            cross_validated_mape={
                k: float(v) for k, v in raw.get("cross_validated_mape", {}).items()
            },
            created=str(raw.get("created", "")),
            source=str(raw.get("source", "")),
            kv_capacity_factor=float(raw.get("kv_capacity_factor", 1.0)),
            kv_dtype=raw.get("kv_dtype"),
            prompts=raw.get("prompts"),
            held=_held(raw.get("held") or {}, names, where),
            model_types=tuple(str(t) for t in raw.get("model_types") or ()),
            layouts=_layouts(raw.get("layouts") or (), where),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CatalogError(f"{where}: not a calibration profile ({exc})") from None


def _layouts(raw: Any, where: str) -> tuple[str, ...]:
    kinds = tuple(str(k) for k in raw)
    unknown = [k for k in kinds if k not in LAYOUT_KINDS]
    if unknown:
        raise CatalogError(
            f"{where}: layouts: unknown kind(s) {unknown}; known: {', '.join(LAYOUT_KINDS)}"
        )
    return kinds


def _held(raw: dict[str, Any], names: set[str], where: str) -> dict[str, float]:
    unknown = set(raw) - names
    if unknown:
        raise CatalogError(f"{where}: held: unknown field(s) {sorted(unknown)}")
    return {k: float(v) for k, v in raw.items()}


def profile_to_dict(p: CalibrationProfile) -> dict[str, Any]:
    """The YAML mapping of a profile."""
    out = asdict(replace(p, params=StepParams()))  # asdict would walk the kernel tables
    out["params"] = p.params.values()
    out["fitted_on"] = list(p.fitted_on)
    out["model_types"] = list(p.model_types)
    out["layouts"] = list(p.layouts)
    if not p.held:
        del out["held"]
    if not p.model_types:
        del out["model_types"]
    if not p.layouts:
        del out["layouts"]
    return out


def load_profiles(directory: Path | None = None) -> list[CalibrationProfile]:
    """Every profile in `directory` (default: the catalog's)."""
    return list(_load(str(directory or profile_dir())))


@cache
def _load(directory: str) -> tuple[CalibrationProfile, ...]:
    out = []
    for path in sorted(Path(directory).glob("*.yaml")):
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise CatalogError(f"{path.name}: not YAML ({exc})") from None
        out.append(profile_from_dict(raw, path.name))
    return tuple(out)


def calibration_for(
    gpu: str, engine: str, model_type: str | None = None, layout: str | None = None
) -> Calibration:
    """The calibration for this GPU and engine, with the measured kernel tables of that GPU
    and engine attached (the profile's residuals were fitted on top of them); for a model
    architecture (`model_type`, as config.json names it) the profile's runs did not serve, or
    a kind of `layout` (`Deployment.layout_kind`) they did not use, with the band measured
    for such predictions."""
    cal = choose_calibration(load_profiles(), gpu, engine, model_type, layout)
    params = with_gpu_measurements(cal.params, gpu, engine)
    if params.kernels is None:
        cal = without_tables(cal, params, gpu, engine, model_type)
    elif cal.status == "extrapolated" and cal.profile is not None and cal.profile.gpu != gpu:
        # the engine's CPU-side residuals (per-step and per-sequence overhead) carry over to
        # another GPU; the kernel scale compares the home GPU's kernels with the home GPU's
        # tables and does not: this GPU's own tables are taken as measured
        cal = extrapolate(cal, params, gpu, engine)
    else:
        cal = replace(cal, params=params)
    return for_layout(for_model(with_held_out(cal, engine), engine, model_type), engine, layout)


def for_layout(cal: Calibration, engine: str, layout: str | None) -> Calibration:
    """`cal` used for a `layout` kind: unchanged where its profile's runs used that kind of
    layout (or where either is unknown); else with the band measured for a profile
    predicting runs of such layouts (`catalog/data/extrapolation_error.yaml`)."""
    prof = cal.profile
    if not layout or prof is None or not prof.layouts or layout in prof.layouts:
        return cal
    rows, measured = extrapolation_errors()
    band, basis = layout_band(rows, measured, engine, prof.gpu, layout)
    out = replace(cal, layout_band_pct=band, layout_basis=basis)
    return replace(out, note=f"{cal.note}; {out.layout_note}, used for {layout}")


def without_tables(
    cal: Calibration, params: StepParams, gpu: str, engine: str, model_type: str | None = None
) -> Calibration:
    """`cal` on a GPU without kernel tables: the roofline at the fractions of peak that the
    profile's own GPU's measured kernels reach (`roofline_transfer`), and the band measured
    for such predictions; unchanged where there is nothing to read them off."""
    prof = cal.profile
    if prof is None or prof.gpu == gpu:
        return cal
    home = with_gpu_measurements(prof.params, prof.gpu, engine)
    t = transfer(prof, home, model_type)
    if t is None:
        return cal
    params = t.apply(params)
    rows, measured = extrapolation_errors()
    band, basis = extrapolation_band(rows, measured, engine, prof.gpu, gpu, tables=False)
    note = f"{cal.note}; {gpu} has no kernel tables: {t.describe()}"
    return replace(
        cal, params=params, note=note, extrapolation_band_pct=band, extrapolation_basis=basis
    )


def with_held_out(cal: Calibration, engine: str) -> Calibration:
    """`cal` on its own GPU with a profile that could not be cross-validated (its runs share
    one input length): with its measured error on that GPU's runs it was not fitted on."""
    prof = cal.profile
    if cal.status != "calibrated" or prof is None or prof.cross_validated_mape:
        return cal
    rows, measured = extrapolation_errors()
    band, basis = held_out_band(rows, measured, engine, prof.gpu, f"{prof.id} v{prof.version}")
    return replace(cal, held_out_band_pct=band, held_out_basis=basis)


def for_model(cal: Calibration, engine: str, model_type: str | None) -> Calibration:
    """`cal` used for `model_type`: unchanged where its profile's runs served that
    architecture (or where either is unknown); else with the band measured for a profile
    predicting an architecture it was not fitted on (`catalog/data/extrapolation_error.yaml`),
    and that architecture's per-step residual where one was measured for the profile's engine
    version (`catalog/data/architecture_residual.yaml`)."""
    prof = cal.profile
    if not model_type or prof is None or not prof.model_types or model_type in prof.model_types:
        return cal
    rows, measured = extrapolation_errors()
    band, basis = model_band(rows, measured, engine, prof.gpu, model_type)
    out = replace(cal, model_band_pct=band, model_basis=basis)
    note = f"{cal.note}; {out.model_note}, used for {model_type}"
    # what that architecture costs per step beyond the fitted one, where it was measured
    residual = residual_for(prof.engine, prof.engine_version, prof.model_types, model_type)
    if residual is not None:
        note += f" ({residual.describe()})"
    return replace(out, params=with_residual(cal.params, residual), note=note)


def extrapolate(cal: Calibration, params: StepParams, gpu: str, engine: str) -> Calibration:
    """`cal` (a profile of `engine` fitted on another GPU) used on `gpu`, whose measured
    tables and constants `params` carries: kernel scale 1, and the band measured for such
    extrapolations (`catalog/data/extrapolation_error.yaml`)."""
    assert cal.profile is not None
    params = replace(params, kernel_scale=1.0)
    note = f"{cal.note}; kernel times from {gpu}'s own tables (kernel scale 1)"
    rows, measured = extrapolation_errors()
    band, basis = extrapolation_band(rows, measured, engine, cal.profile.gpu, gpu)
    return replace(
        cal, params=params, note=note, extrapolation_band_pct=band, extrapolation_basis=basis
    )


def with_gpu_measurements(params: StepParams, gpu: str, engine: str) -> StepParams:
    """`params` with what was measured on this GPU for this engine: its kernel tables, and the
    roofline's collective constants read off its all-reduce table (what the tables do not
    price, EP all-to-all beyond one node, PP sends, collectives on the network, uses them);
    unchanged where the catalog has no tables. Calibration fits on top of these, and
    predictions price with them."""
    tables = load_kernel_tables(gpu, engine)
    if tables is None:
        return params
    params = replace(params, kernels=tables)
    link_bw = get_gpu(gpu).scale_up_bw_bytes_per_s
    if tables.all_reduce and link_bw:
        n = max(tables.all_reduce)  # NCCL's all-reduce over the largest group measured
        eff, latency_s = collective_constants(tables.all_reduce[n], n, link_bw)
        params = replace(params, comm_efficiency=eff, collective_latency_s=latency_s)
    return params


def save_profile(p: CalibrationProfile, directory: Path) -> Path:
    """Write `<id>-v<version>.yaml` atomically; returns the path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{p.id}-v{p.version}.yaml"
    text = "# moerun calibration profile (written by `moerun calibrate`)\n" + yaml.safe_dump(
        profile_to_dict(p), sort_keys=False
    )
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _load.cache_clear()
    return path


def next_version(profiles: list[CalibrationProfile], profile_id: str) -> int:
    """One more than the newest version of `profile_id`."""
    return 1 + max((p.version for p in profiles if p.id == profile_id), default=0)
