"""`moerun calibrate`: fit step-time efficiencies to measurements and store a profile."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from moerun.catalog.models import load_spec
from moerun.catalog.perf.architecture import (
    residual_for,
    with_residual,
)
from moerun.catalog.perf.calibration import (
    DEFAULT_MTP_ACCEPTANCE,
    extrapolate,
    load_profiles,
    next_version,
    profile_dir,
    save_profile,
    with_gpu_measurements,
    without_tables,
)
from moerun.catalog.perf.extrapolation import METRICS as EXTRAPOLATION_METRICS
from moerun.catalog.perf.measurements import (
    MeasuredRun,
    all_catalog_measurements,
    builtin_measurements,
)
from moerun.commands.arg_types import acceptance as _acceptance
from moerun.commands.arg_types import positive_float as _positive_float
from moerun.commands.calibration_inputs import load_runs
from moerun.commands.calibration_points import SIMULATED_ENGINES, deployment_for, point_for
from moerun.commands.deployment_args import add_deployment_args
from moerun.core.calibrate.calibration import (
    FIT_BOUNDS,
    CalibrationProfile,
    Point,
    choose_calibration,
    fit,
    fit_loss,
    median_ape,
    point_errors,
    predict,
)
from moerun.core.perf.acceptance import per_token_acceptance
from moerun.core.perf.step_time import StepParams
from moerun.core.sim.build import SimOptions
from moerun.errors import MoerunError, UsageError

REPORT_METRICS = ("ttft_p50_ms", "ttft_p99_ms", "tpot_p50_ms", "tpot_p99_ms", "output_tok_per_s")


# KV capacity factors tried: the engine's real KV capacity relative to the memory fit's
# estimate (which rests on a stated engine-reserve assumption). Each factor changes the
# schedule, so each is simulated; the efficiencies are fitted for every factor and the factor
# with the lowest loss on the training runs wins (cross-validation repeats the choice per fold).
# Fewer runs than fitted residuals (step and sequence overhead, kernel scale) would be fitted
# exactly and say nothing; such a group is reported but stores no profile.
MIN_RUNS = 3
KV_FACTORS = (0.50, 0.55, 0.60, 0.65, 0.70, 0.75, 0.80, 0.85, 0.90, 0.95, 1.00, 1.05)


def _best(
    points_by_factor: dict[float, list[Point]],
    groups: set[str],
    held: dict[str, float] | None = None,
) -> tuple[float, StepParams]:
    best: tuple[float, float, StepParams] | None = None
    # nearest to 1 (moerun's own KV estimate) first: a factor must fit strictly better to
    # move away from it, so runs whose KV never fills keep the estimate instead of a bound
    for factor in sorted(points_by_factor, key=lambda f: (abs(f - 1.0), f)):
        train = [p for p in points_by_factor[factor] if p.group in groups]
        # start from the points' own parameters: they carry the GPU and engine's tables
        params = fit(train, train[0].model.params if train else None, held)
        loss = fit_loss(train, params)
        if best is None or loss < best[0] * (1 - 1e-6):
            best = (loss, factor, params)
    assert best is not None
    return best[1], best[2]


def calibrate_runs(
    runs: list[MeasuredRun], mtp_acceptance: float, held: dict[str, float] | None = None
) -> dict[str, Any]:
    """Fit one profile per (GPU, engine) group, the parameters in `held` fixed at their
    values; per-point and cross-validated errors."""
    held = dict(held or {})
    groups: dict[tuple[str, str], list[MeasuredRun]] = defaultdict(list)
    for r in runs:
        groups[(r.gpu, r.engine)].append(r)
    out: dict[str, Any] = {"mtp_acceptance": mtp_acceptance, "groups": []}
    for (gpu, engine), members in sorted(groups.items()):
        # the acceptance applies only to runs that draft (Mtp.drafting)
        by_factor = {
            f: [point_for(r, SimOptions(kv_capacity_factor=f), mtp_acceptance) for r in members]
            for f in KV_FACTORS
        }
        all_groups = {r.group for r in members}
        factor, params = _best(by_factor, all_groups, held)
        points = by_factor[factor]
        fitted = {p.id: predict(p, params) for p in points}
        # leave one input length out; runs of one input length cannot be cross-validated (an
        # in-sample error is no band): their profile's band is measured on other runs
        cv: dict[str, dict[str, float]] = {}
        for g in sorted(all_groups) if len(all_groups) > 1 else ():
            f_g, params_g = _best(by_factor, all_groups - {g}, held)
            for p in by_factor[f_g]:
                if p.group == g:
                    cv[p.id] = predict(p, params_g)
        rows = []
        for p in points:
            rows.append(
                {
                    "id": p.id,
                    "group": p.group,
                    "measured": {m: p.measured.get(m) for m in REPORT_METRICS},
                    "predicted": {m: fitted[p.id][m] for m in REPORT_METRICS},
                    "cross_validated": {m: cv[p.id][m] for m in REPORT_METRICS}
                    if p.id in cv
                    else None,
                }
            )
        out["groups"].append(
            {
                "gpu": gpu,
                "engine": engine,
                "engine_version": members[0].engine_version,
                "params": params,
                "kv_capacity_factor": factor,
                "held": held,
                "runs": [r.id for r in members],
                "sources": sorted({r.source.split(" (")[0] for r in members}),
                "model_types": sorted({model_type(r) for r in members}),
                "layouts": sorted({run_layout(r) for r in members}),
                "kv_dtype": _one({r.kv_dtype for r in members}),
                "prompts": _one({r.prompts for r in members}),
                "rows": rows,
                "in_sample_mape": median_ape(point_errors(points, fitted)),
                "cross_validated_mape": median_ape(
                    point_errors([p for p in points if p.id in cv], cv)
                ),
            }
        )
    return out


def _profile(group: dict[str, Any], acceptance: float, version: int) -> CalibrationProfile:
    return CalibrationProfile(
        id=f"{group['gpu']}-{group['engine']}",
        version=version,
        gpu=group["gpu"],
        engine=group["engine"],
        engine_version=group["engine_version"],
        params=group["params"],
        mtp_acceptance=acceptance,
        fitted_on=tuple(group["runs"]),
        in_sample_mape=group["in_sample_mape"],
        cross_validated_mape=group["cross_validated_mape"],
        created=dt.date.today().isoformat(),
        source="; ".join(group["sources"]),
        kv_capacity_factor=group["kv_capacity_factor"],
        kv_dtype=group["kv_dtype"],
        prompts=group["prompts"],
        held=group["held"],
        model_types=tuple(group["model_types"]),
        layouts=tuple(group["layouts"]),
    )


def model_type(run: MeasuredRun) -> str:
    """The architecture of the model a run served, as its config.json names it."""
    return load_spec(run.model).arch.model_type


def run_layout(run: MeasuredRun) -> str:
    """The kind of layout a run used (`Deployment.layout_kind`)."""
    return deployment_for(run, 0.0).layout_kind()


def _held(text: str) -> tuple[str, float]:
    """`NAME=VALUE` for --hold: a fitted parameter and a value inside its bounds."""
    name, sep, value = text.partition("=")
    if not sep or name not in FIT_BOUNDS:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected NAME=VALUE with NAME one of {', '.join(FIT_BOUNDS)}"
        )
    try:
        v = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: {value!r} is not a number") from None
    lo, hi = FIT_BOUNDS[name]
    if not lo <= v <= hi:
        raise argparse.ArgumentTypeError(f"{text!r}: {name} must be within [{lo}, {hi}]")
    return name, v


def _one(values: set[str]) -> str:
    """The value the runs share, or the sorted values joined when they differ."""
    return "+".join(sorted(values))


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Fit, report, and store profiles."""
    if args.files:
        runs = [r for f in args.files for r in load_runs(Path(f), args)]
    else:
        runs = builtin_measurements()
    usable = [
        r
        for r in runs
        if r.engine in SIMULATED_ENGINES and r.concurrency is not None and r.split == "fit"
    ]
    if not usable:
        raise UsageError(
            "no closed-loop vLLM or SGLang runs to fit in the given files "
            f"(engines moerun simulates: {', '.join(SIMULATED_ENGINES)})"
        )
    report = calibrate_runs(usable, args.mtp_acceptance, dict(args.hold or []))
    directory = Path(args.out) if args.out else profile_dir()
    existing = load_profiles(directory) if directory.exists() else []
    written = []
    for g in report["groups"]:
        pid = f"{g['gpu']}-{g['engine']}"
        prof = _profile(g, args.mtp_acceptance, next_version(existing, pid))
        if len(g["runs"]) < MIN_RUNS:
            g["profile"] = f"none: {len(g['runs'])} run(s), a profile needs {MIN_RUNS}"
        else:
            if not args.dry_run:
                written.append(str(save_profile(prof, directory)))
            g["profile"] = f"{prof.id} v{prof.version}"
        g["params"] = g["params"].values()
    report["written"] = written
    if args.json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        _print(Console(), report)
    return 0


def _print(console: Console, report: dict[str, Any]) -> None:
    for g in report["groups"]:
        t = Table(
            title=f"{g['gpu']} / {g['engine']} ({g['engine_version']}): measured vs fitted "
            "(cross-validated in brackets)"
        )
        t.add_column("run")
        for m in ("ttft_p50_ms", "ttft_p99_ms", "tpot_p50_ms", "output_tok_per_s"):
            t.add_column(m, justify="right")
        for row in g["rows"]:
            cells = [row["id"]]
            for m in ("ttft_p50_ms", "ttft_p99_ms", "tpot_p50_ms", "output_tok_per_s"):
                meas = row["measured"][m]
                cv = row["cross_validated"]
                cells.append(
                    f"{meas:,.0f} / {row['predicted'][m]:,.0f}" + (f" [{cv[m]:,.0f}]" if cv else "")
                    if meas
                    else "-"
                )
            t.add_row(*cells)
        console.print(t)
        console.print("median abs % error, in sample:", _fmt(g["in_sample_mape"]))
        console.print(
            "median abs % error, cross-validated (leave one input length out):",
            _fmt(g["cross_validated_mape"])
            if g["cross_validated_mape"]
            else "none: the runs share one input length (measure other lengths to get a band)",
        )
        console.print("parameters:", {k: round(v, 6) for k, v in g["params"].items()})
        console.print(
            f"KV capacity factor (engine KV / memory-fit estimate): {g['kv_capacity_factor']}"
        )
        console.print(f"profile: {g['profile']}")
    for path in report["written"]:
        console.print(f"wrote {path}")


def _fmt(d: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.1f}%" for k, v in d.items())


def register(sub: Any) -> None:
    """Add `moerun calibrate`."""
    p = sub.add_parser("calibrate", help="fit the performance model to measurements")
    p.add_argument(
        "files",
        nargs="*",
        help="measurement CSVs, `moerun bench` JSON results, or other tools' results: "
        "GuideLLM benchmarks.json, vllm bench serve JSON (default: the catalog's published "
        "measurements); give the deployment flags for files that do not say what ran",
    )
    p.add_argument(
        "--mtp-acceptance",
        type=_acceptance,
        default=DEFAULT_MTP_ACCEPTANCE,
        help=f"MTP draft acceptance the runs had (default {DEFAULT_MTP_ACCEPTANCE})",
    )
    p.add_argument(
        "--time-scale",
        type=_positive_float,
        help="another tool measured an endpoint that ran this many times faster than real "
        "time (`moerun emulate --time-scale X`): its times are multiplied by X",
    )
    p.add_argument(
        "--hold",
        type=_held,
        action="append",
        metavar="NAME=VALUE",
        help="fix a fitted parameter at VALUE instead of fitting it (repeatable; the profile "
        f"records it); NAME is one of {', '.join(FIT_BOUNDS)}",
    )
    p.add_argument("--out", help="profile directory (default: the catalog's)")
    p.add_argument("--dry-run", action="store_true", help="report only; write no profile")
    p.add_argument("--json", action="store_true")
    add_deployment_args(p, model_positional=False)
    p.set_defaults(func=cmd_calibrate)


# Extrapolation error: each engine's newest profile per GPU predicting every other GPU's
# closed-loop runs of that engine (the catalog's measurement files), as `calibration_for`
# extrapolates: the target GPU's tables and constants, kernel scale 1.
# `benchmarks/bench_accuracy.py --write-extrapolation` stores the result in the catalog
# (`catalog/data/extrapolation_error.yaml`), where it becomes extrapolated predictions' band.
# A metric measured on fewer runs gives no median to trust
MIN_RUNS_PER_METRIC = 3


def extrapolation_runs(runs: list[MeasuredRun], engine: str, gpu: str) -> list[MeasuredRun]:
    """The runs an extrapolation to `gpu` is measured on: closed-loop runs of that GPU and
    engine without MTP (an unknown draft acceptance would blur the error)."""
    return [
        r
        for r in runs
        if r.gpu == gpu
        and r.engine == engine
        and r.concurrency is not None
        and not r.mtp_tokens
        and any(r.measured.get(m) for m in EXTRAPOLATION_METRICS)
    ]


def extrapolation_errors() -> list[dict[str, Any]]:
    """One row per (profile, other GPU with runs of its engine): the runs and the median
    absolute % error of each metric measured on at least MIN_RUNS_PER_METRIC of them."""
    runs, _ = all_catalog_measurements()
    out = []
    for prof in _newest_profiles():
        home, engine = prof.gpu, prof.engine
        for gpu in sorted({r.gpu for r in runs} - {home}):
            targets = _of_layouts(extrapolation_runs(runs, engine, gpu), prof, True)
            cal = choose_calibration([prof], gpu, engine)
            params = with_gpu_measurements(cal.params, gpu, engine)
            tables = params.kernels is not None
            if not targets:
                continue
            base = cal
            if tables:
                cal = extrapolate(cal, params, gpu, engine)
            priced = []
            for r in targets:
                if not tables:
                    # as calibration_for prices a GPU without tables, for the run's model
                    cal = without_tables(base, params, gpu, engine, model_type(r))
                    if cal is base:  # nothing to read the roofline's fractions off
                        continue
                run_params = _params_for_run(prof, r, cal.params)
                if run_params is not None:
                    priced.append((r, run_params, cal.kv_capacity_factor, 0.0))
            used, band = _median_errors(priced)
            if not used:
                continue
            out.append(
                {
                    "engine": engine,
                    "profile": f"{prof.id} v{prof.version}",
                    "from_gpu": home,
                    "to_gpu": gpu,
                    **({} if tables else {"to_tables": False}),
                    "runs": used,
                    "median_ape_pct": band,
                }
            )
    return out


def _median_errors(
    priced: list[tuple[MeasuredRun, StepParams, float, float]],
) -> tuple[list[str], dict[str, float]]:
    """Each (run, parameters, KV capacity factor, MTP acceptance) simulated and priced: the
    runs that could run, and the median absolute % error of each metric measured on at least
    MIN_RUNS_PER_METRIC of them."""
    errs: dict[str, list[float]] = defaultdict(list)
    used = []
    for r, params, kv_factor, acceptance in priced:
        opts = SimOptions(params=params, kv_capacity_factor=kv_factor)
        try:
            pred = predict(point_for(r, opts, acceptance), params)
        except MoerunError:  # a layout the GPU cannot hold
            continue
        used.append(r.id)
        for m in EXTRAPOLATION_METRICS:
            if r.measured.get(m):
                errs[m].append(abs(pred[m] - r.measured[m]) / r.measured[m] * 100)
    band = {
        m: round(float(np.median(errs[m])), 1)
        for m in EXTRAPOLATION_METRICS
        if len(errs[m]) >= MIN_RUNS_PER_METRIC
    }
    return used, band


def model_extrapolation_runs(
    runs: list[MeasuredRun], prof: CalibrationProfile
) -> list[MeasuredRun]:
    """The runs a profile's error on its own GPU is measured on: closed-loop runs of its GPU
    and engine that it was not fitted on (of other model architectures, and of its own at
    other input lengths or versions), without MTP or with a measured accept length (an
    unknown draft acceptance would blur the error)."""
    return [
        r
        for r in runs
        if r.gpu == prof.gpu
        and r.engine == prof.engine
        and r.id not in prof.fitted_on
        and r.concurrency is not None
        and (not r.mtp_tokens or r.mtp_accept_len)
        and any(r.measured.get(m) for m in EXTRAPOLATION_METRICS)
    ]


def model_extrapolation_errors() -> list[dict[str, Any]]:
    """One row per (profile, model architecture with runs on its GPU that it was not fitted
    on): the runs, predicted with the profile at their measured acceptance, and the median
    absolute % error of each metric measured on at least MIN_RUNS_PER_METRIC of them. An
    architecture it was fitted on gives its held-out row (the band of a profile that could
    not be cross-validated); another, its cross-model row."""
    runs, _ = all_catalog_measurements()
    out = []
    for prof in _newest_profiles():
        if not prof.model_types:
            continue
        by_type: dict[str, list[MeasuredRun]] = defaultdict(list)
        for r in _of_layouts(model_extrapolation_runs(runs, prof), prof, True):
            by_type[model_type(r)].append(r)
        for mtype, used, band in _own_gpu_errors(prof, by_type):
            out.append(
                {
                    **_own_gpu_row(prof),
                    "from_model_types": list(prof.model_types),
                    "to_model_type": mtype,
                    "runs": used,
                    "median_ape_pct": band,
                }
            )
    return out


def _own_gpu_row(prof: CalibrationProfile) -> dict[str, Any]:
    """The fields that name a row measured on the profile's own GPU."""
    return {
        "engine": prof.engine,
        "profile": f"{prof.id} v{prof.version}",
        "from_gpu": prof.gpu,
        "to_gpu": prof.gpu,
    }


def _own_gpu_errors(
    prof: CalibrationProfile, groups: dict[str, list[MeasuredRun]]
) -> Iterator[tuple[str, list[str], dict[str, float]]]:
    """Each group of runs of the profile's own GPU predicted with the profile (its GPU's
    tables), at their measured acceptance: (group, the runs that ran, the median absolute %
    error per metric), for the groups with any metric measured on enough runs."""
    cal = choose_calibration([prof], prof.gpu, prof.engine)
    params = with_gpu_measurements(cal.params, prof.gpu, prof.engine)
    for key, targets in sorted(groups.items()):
        priced = []
        for r in targets:
            run_params = _params_for_run(prof, r, params)
            if run_params is not None:
                priced.append((r, run_params, cal.kv_capacity_factor, _measured_acceptance(r)))
        used, band = _median_errors(priced)
        if used and band:
            yield key, used, band


def _params_for_run(
    prof: CalibrationProfile, r: MeasuredRun, params: StepParams
) -> StepParams | None:
    """`params` as calibration_for prices run `r`'s architecture with `prof`: with the
    residual measured for it, if any; None for a run that residual was fitted on (its error
    measures nothing)."""
    try:
        mtype = model_type(r)
    except MoerunError:
        return params
    res = residual_for(prof.engine, prof.engine_version, prof.model_types, mtype)
    if res is not None and r.id in res.runs:
        return None
    return with_residual(params, res)


def architecture_residual_rows() -> list[dict[str, Any]]:
    """One row per (GPU, engine version) whose closed-loop runs without MTP (split `fit`)
    include at least MIN_RUNS of an architecture a catalog profile of the engine was fitted on
    and MIN_RUNS of another: a base profile fitted on the first, and the per-step overhead
    fitted on the second with every other parameter held at the base's."""
    runs, _ = all_catalog_measurements()
    fitted_types: dict[str, set[str]] = defaultdict(set)
    for prof in load_profiles():
        fitted_types[prof.engine] |= set(prof.model_types)
    groups: dict[tuple[str, str, str], dict[str, list[MeasuredRun]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for r in runs:
        if (
            r.split == "fit"
            and r.concurrency is not None
            and not r.mtp_tokens
            and r.engine in SIMULATED_ENGINES
        ):
            groups[(r.gpu, r.engine, r.engine_version)][model_type(r)].append(r)
    out = []
    for (gpu, engine, version), by_type in sorted(groups.items()):
        bases = [t for t in sorted(by_type) if t in fitted_types[engine]]
        others = [t for t in sorted(by_type) if t not in fitted_types[engine]]
        for a in bases:
            for b in others:
                if len(by_type[a]) < MIN_RUNS or len(by_type[b]) < MIN_RUNS:
                    continue
                (base,) = calibrate_runs(by_type[a], 0.0)["groups"]
                values = base["params"].values()
                held = {n: values[n] for n in FIT_BOUNDS if n != "step_overhead_s"}
                (other,) = calibrate_runs(by_type[b], 0.0, held)["groups"]
                step = other["params"].step_overhead_s - base["params"].step_overhead_s
                out.append(
                    {
                        "engine": engine,
                        "engine_version": version,
                        "gpu": gpu,
                        "from_model_type": a,
                        "to_model_type": b,
                        "base_runs": base["runs"],
                        "runs": other["runs"],
                        "step_overhead_s": round(step, 6),
                        "in_sample_mape": {
                            k: round(v, 1) for k, v in other["in_sample_mape"].items()
                        },
                    }
                )
    return out


def _of_layouts(
    runs: list[MeasuredRun], prof: CalibrationProfile, fitted: bool
) -> list[MeasuredRun]:
    """The runs of a kind of layout `prof`'s runs used (`fitted`) or did not use; every run
    where the profile does not record its layouts (`fitted`) or none (not `fitted`)."""
    if not prof.layouts:
        return runs if fitted else []
    return [r for r in runs if (_layout_or_none(r) in prof.layouts) == fitted]


def _layout_or_none(r: MeasuredRun) -> str | None:
    try:
        return run_layout(r)
    except MoerunError:  # a model or GPU the catalog lacks: the run cannot be priced anyway
        return None


def layout_extrapolation_errors() -> list[dict[str, Any]]:
    """One row per (profile, kind of layout with runs on its GPU that its runs did not use):
    the runs (any model architecture), predicted with the profile at their measured
    acceptance, and the median absolute % error of each metric measured on at least
    MIN_RUNS_PER_METRIC of them."""
    runs, _ = all_catalog_measurements()
    out = []
    for prof in _newest_profiles():
        by_kind: dict[str, list[MeasuredRun]] = defaultdict(list)
        for r in _of_layouts(model_extrapolation_runs(runs, prof), prof, False):
            kind = _layout_or_none(r)
            if kind is not None:
                by_kind[kind].append(r)
        for kind, used, band in _own_gpu_errors(prof, by_kind):
            out.append(
                {
                    **_own_gpu_row(prof),
                    "from_layouts": list(prof.layouts),
                    "to_layout": kind,
                    "to_model_types": sorted(
                        {model_type(r) for r in by_kind[kind] if r.id in used}
                    ),
                    "runs": used,
                    "median_ape_pct": band,
                }
            )
    return out


def _measured_acceptance(r: MeasuredRun) -> float:
    """The run's per-token draft acceptance from its measured accept length (0 without MTP)."""
    if r.mtp_tokens and r.mtp_accept_len:
        return per_token_acceptance(r.mtp_accept_len, r.mtp_tokens)
    return 0.0


def _newest_profiles() -> list[CalibrationProfile]:
    """Each (GPU, engine)'s newest profile in the catalog."""
    newest: dict[tuple[str, str], CalibrationProfile] = {}
    for prof in load_profiles():
        key = (prof.gpu, prof.engine)
        if key not in newest or prof.version > newest[key].version:
            newest[key] = prof
    return [newest[k] for k in sorted(newest)]
