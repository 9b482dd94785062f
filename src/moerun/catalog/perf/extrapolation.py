"""The measured error of extrapolated predictions (`data/extrapolation_error.yaml`): a
profile fitted on one GPU predicting another GPU's runs of the same engine, as moerun does
for a (GPU, engine) without a profile of its own; and a profile predicting runs of its own GPU
and engine on a model architecture it was not fitted on (a row with `to_model_type`), as moerun
does for every model but the ones a profile's runs served; and a profile predicting runs of
its own GPU and engine on a kind of layout its runs did not use (a row with `to_layout`:
attention DP, several nodes, prefill/decode disaggregation). Written by
`benchmarks/bench_accuracy.py --write-extrapolation`."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from moerun.catalog.files import read_measured_rows, read_package_file, write_measured_rows
from moerun.core.deploy.deployment import LAYOUT_KINDS

FILE = "extrapolation_error.yaml"
# the comment the written file opens with
_HEADER = """\
The measured error of extrapolated predictions: each engine's profile fitted on one GPU
predicting another GPU's closed-loop runs without MTP, as calibration_for extrapolates
(that GPU's tables, kernel scale 1); and (rows with to_model_type) each profile predicting its
own GPU's closed-loop runs of a model architecture it was not fitted on (runs without MTP
or with a measured accept length, at that acceptance); and (rows with to_layout) each profile
predicting its own GPU's runs of a kind of layout its runs did not use. Median absolute
% error per metric. Each row counts only runs of the layouts its profile was fitted on,
but for to_layout rows.
Written by
.venv/bin/python benchmarks/bench_accuracy.py --write-extrapolation"""
METRICS = (
    "ttft_p50_ms",
    "ttft_p99_ms",
    "ttft_mean_ms",
    "tpot_p50_ms",
    "tpot_p99_ms",
    "tpot_mean_ms",
    "output_tok_per_s",
)


@dataclass(frozen=True)
class ExtrapolationError:
    """One profile's median absolute % error on another GPU's runs of its engine, or (with
    `to_model_type`) on its own GPU's runs of a model architecture it was not fitted on."""

    engine: str
    profile: str  # "<id> v<version>"
    from_gpu: str
    to_gpu: str
    runs: tuple[str, ...]
    median_ape_pct: dict[str, float]
    # a row on the profile's own GPU: the architectures (HF model_type) it was fitted on, and
    # the one the runs here served (another: a cross-model row; one of them: its held-out runs,
    # other input lengths or engine versions); empty for a cross-GPU row
    from_model_types: tuple[str, ...] = ()
    to_model_type: str = ""
    # the other GPU has kernel tables (False: priced by the roofline at the fractions of peak
    # read off the profile's GPU, `roofline_transfer`)
    to_tables: bool = True
    # a row on the profile's own GPU measured on runs of a kind of layout its runs did not use
    # (`Deployment.layout_kind`), and the kinds they used; the model architectures of those
    # runs (any: the layout is what the row is about)
    from_layouts: tuple[str, ...] = ()
    to_layout: str = ""
    to_model_types: tuple[str, ...] = ()

    @property
    def cross_layout(self) -> bool:
        """A row measured on another kind of layout of the profile's own GPU."""
        return bool(self.to_layout)

    @property
    def cross_model(self) -> bool:
        """A row measured on another model architecture of the profile's own GPU."""
        return bool(self.to_model_type) and self.to_model_type not in self.from_model_types

    @property
    def held_out(self) -> bool:
        """A row measured on the profile's own GPU and architecture, runs it was not fitted on."""
        return bool(self.to_model_type) and self.to_model_type in self.from_model_types


def parse_extrapolation(text: str) -> tuple[tuple[ExtrapolationError, ...], str]:
    """The rows of an extrapolation_error.yaml text, and the date they were measured."""
    return read_measured_rows(text, FILE, _extrapolation_row)


def _extrapolation_row(row: dict[str, Any]) -> ExtrapolationError:
    errors: dict[str, Any] = row["median_ape_pct"]
    unknown = set(errors) - set(METRICS)
    if unknown:
        raise ValueError(f"unknown metric(s) {sorted(unknown)}")
    runs = tuple(str(r) for r in row["runs"])
    if not runs:
        raise ValueError("no runs")
    to_type = str(row.get("to_model_type") or "")
    from_types = tuple(str(t) for t in row.get("from_model_types") or ())
    if to_type and not from_types:
        raise ValueError("to_model_type needs the from_model_types it was fitted on")
    if to_type and row["from_gpu"] != row["to_gpu"]:
        raise ValueError("a cross-model row is measured on the profile's own GPU")
    to_tables = row.get("to_tables", True)
    if not isinstance(to_tables, bool):
        raise ValueError(f"to_tables must be true or false, not {to_tables!r}")
    to_layout = str(row.get("to_layout") or "")
    from_layouts = tuple(str(k) for k in row.get("from_layouts") or ())
    for kind in (to_layout, *from_layouts) if to_layout else from_layouts:
        if kind not in LAYOUT_KINDS:
            raise ValueError(f"layout {kind!r} is not one of {', '.join(LAYOUT_KINDS)}")
    if to_layout and not from_layouts:
        raise ValueError("to_layout needs the from_layouts the profile's runs used")
    if to_layout and (to_type or row["from_gpu"] != row["to_gpu"]):
        raise ValueError("a cross-layout row is measured on the profile's own GPU alone")
    return ExtrapolationError(
        engine=str(row["engine"]),
        profile=str(row["profile"]),
        from_gpu=str(row["from_gpu"]),
        to_gpu=str(row["to_gpu"]),
        runs=runs,
        median_ape_pct={k: float(v) for k, v in errors.items()},
        from_model_types=from_types,
        to_model_type=to_type,
        to_tables=to_tables,
        from_layouts=from_layouts,
        to_layout=to_layout,
        to_model_types=tuple(str(t) for t in row.get("to_model_types") or ()),
    )


@cache
def extrapolation_errors() -> tuple[tuple[ExtrapolationError, ...], str]:
    """The catalog's measured extrapolation errors and their date."""
    return parse_extrapolation(read_package_file(FILE))


def write_extrapolation(rows: list[dict[str, Any]]) -> Path:
    """Store measured rows (`moerun.commands.calibrate.extrapolation_errors`) in the catalog,
    dated today; returns the path. The loader reads them back on the next start."""
    path = write_measured_rows(
        FILE,
        _HEADER,
        rows,
        parse_extrapolation,
    )
    extrapolation_errors.cache_clear()
    return path


def extrapolation_band(
    rows: tuple[ExtrapolationError, ...],
    measured: str,
    engine: str,
    home_gpu: str,
    gpu: str,
    tables: bool = True,
) -> tuple[dict[str, float], str]:
    """The band of a prediction on `gpu` (which has kernel tables, or not) with `engine`'s
    profile from `home_gpu`: that pair's measured error where it was measured, else the
    largest error measured for the engine's profiles on another GPU of the same kind (per
    metric); ({}, why) where the engine has none."""
    mine = [
        r
        for r in rows
        if r.engine == engine and not r.to_model_type and not r.to_layout and r.to_tables == tables
    ]
    if not mine:
        kind = "another GPU's runs" if tables else "the runs of a GPU without kernel tables"
        return {}, f"no {engine} profile has been measured on {kind}"
    pair = [r for r in mine if r.from_gpu == home_gpu and r.to_gpu == gpu]
    if pair:
        r = pair[0]
        return dict(r.median_ape_pct), (
            f"measured error of {r.profile} on {r.to_gpu}'s {len(r.runs)} {engine} runs "
            f"({measured}, benchmarks/bench_accuracy.py)"
        )
    band = _largest(mine)
    pairs = ", ".join(f"{r.profile} on {r.to_gpu}" for r in mine)
    return band, (
        f"largest measured error of a {engine} profile on another GPU's runs ({pairs}; "
        f"{measured}, benchmarks/bench_accuracy.py); {home_gpu} to {gpu} itself not measured"
    )


def model_band(
    rows: tuple[ExtrapolationError, ...], measured: str, engine: str, gpu: str, model_type: str
) -> tuple[dict[str, float], str]:
    """The band of a prediction for a `model_type` that `engine`'s profile on `gpu` was not
    fitted on: that pair's measured error where it was measured, else the largest error
    measured for the engine's profiles on another architecture (per metric); ({}, why) where
    the engine has none."""
    mine = [r for r in rows if r.engine == engine and r.cross_model]
    if not mine:
        return {}, (
            f"no {engine} profile has been measured on a model architecture it was not "
            f"fitted on; {model_type} is an extrapolation"
        )
    pair = [r for r in mine if r.from_gpu == gpu and r.to_model_type == model_type]
    if pair:
        r = pair[0]
        return dict(r.median_ape_pct), (
            f"measured error of {r.profile} (fitted on {', '.join(r.from_model_types)} runs) on "
            f"{len(r.runs)} {gpu} {engine} runs of {model_type} ({measured}, "
            "benchmarks/bench_accuracy.py)"
        )
    band = _largest(mine)
    pairs = ", ".join(f"{r.profile} on {r.to_model_type}" for r in mine)
    return band, (
        f"largest measured error of a {engine} profile on a model architecture it was not "
        f"fitted on ({pairs}; {measured}, benchmarks/bench_accuracy.py); {model_type} on {gpu} "
        "itself not measured"
    )


def layout_band(
    rows: tuple[ExtrapolationError, ...], measured: str, engine: str, gpu: str, layout: str
) -> tuple[dict[str, float], str]:
    """The band of a prediction for a kind of `layout` that `engine`'s profile on `gpu` was
    not fitted on: that pair's measured error where it was measured, else the largest error
    measured for the engine's profiles on that kind of layout (per metric); ({}, why) where
    none was."""
    mine = [r for r in rows if r.engine == engine and r.to_layout == layout]
    if not mine:
        return {}, (
            f"no {engine} profile has been measured on runs of a {layout} layout; this one "
            "is an extrapolation"
        )
    pair = [r for r in mine if r.from_gpu == gpu]
    if pair:
        r = pair[0]
        return dict(r.median_ape_pct), (
            f"measured error of {r.profile} (fitted on {', '.join(r.from_layouts)} runs) on "
            f"{len(r.runs)} {gpu} {engine} runs of {layout} layouts "
            f"({', '.join(r.to_model_types) or 'models'}; {measured}, "
            "benchmarks/bench_accuracy.py)"
        )
    band = _largest(mine)
    pairs = ", ".join(f"{r.profile} on {r.from_gpu}" for r in mine)
    return band, (
        f"largest measured error of a {engine} profile on {layout} runs ({pairs}; {measured}, "
        f"benchmarks/bench_accuracy.py); {gpu} itself not measured"
    )


def held_out_band(
    rows: tuple[ExtrapolationError, ...], measured: str, engine: str, gpu: str, profile: str
) -> tuple[dict[str, float], str]:
    """The band of a prediction with `profile` (fitted on runs of one input length, so never
    cross-validated) on its own GPU: its error on its GPU's runs of its architectures that it
    was not fitted on (the largest per metric over those architectures); ({}, why) where none
    was measured."""
    mine = [r for r in rows if r.held_out and r.profile == profile and r.from_gpu == gpu]
    if not mine:
        return {}, f"{profile} was fitted on one input length and measured on no other runs"
    band = _largest(mine)
    runs = sum(len(r.runs) for r in mine)
    return band, (
        f"measured error of {profile} on {runs} {gpu} {engine} runs of "
        f"{', '.join(r.to_model_type for r in mine)} it was not fitted on (its fitted runs share "
        f"one input length: nothing to cross-validate; {measured}, benchmarks/bench_accuracy.py)"
    )


def _largest(rows: list[ExtrapolationError]) -> dict[str, float]:
    """The largest error of each metric over `rows` (the metrics any of them measured)."""
    return {
        m: max(r.median_ape_pct[m] for r in rows if m in r.median_ape_pct)
        for m in METRICS
        if any(m in r.median_ape_pct for r in rows)
    }
