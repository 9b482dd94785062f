"""The measured error of extrapolated predictions (`data/extrapolation_error.yaml`): a
profile fitted on one GPU predicting another GPU's runs of the same engine, as moerun does
for a (GPU, engine) without a profile of its own. Written by
`benchmarks/bench_accuracy.py --write-extrapolation`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from moerun.errors import CatalogError

FILE = "extrapolation_error.yaml"
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
    """One profile's median absolute % error on another GPU's runs of its engine."""

    engine: str
    profile: str  # "<id> v<version>"
    from_gpu: str
    to_gpu: str
    runs: tuple[str, ...]
    median_ape_pct: dict[str, float]


def parse_extrapolation(text: str) -> tuple[tuple[ExtrapolationError, ...], str]:
    """The rows of an extrapolation_error.yaml text, and the date they were measured."""
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise CatalogError(f"{FILE}: not a mapping")
    rows = []
    for i, row in enumerate(data.get("rows") or []):
        try:
            errors: dict[str, Any] = row["median_ape_pct"]
            unknown = set(errors) - set(METRICS)
            if unknown:
                raise ValueError(f"unknown metric(s) {sorted(unknown)}")
            runs = tuple(str(r) for r in row["runs"])
            if not runs:
                raise ValueError("no runs")
            rows.append(
                ExtrapolationError(
                    engine=str(row["engine"]),
                    profile=str(row["profile"]),
                    from_gpu=str(row["from_gpu"]),
                    to_gpu=str(row["to_gpu"]),
                    runs=runs,
                    median_ape_pct={k: float(v) for k, v in errors.items()},
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CatalogError(f"{FILE}: row {i}: bad or missing field ({exc})") from None
    return tuple(rows), str(data.get("measured", ""))


@cache
def extrapolation_errors() -> tuple[tuple[ExtrapolationError, ...], str]:
    """The catalog's measured extrapolation errors and their date."""
    text = resources.files("moerun.catalog").joinpath("data", FILE).read_text()
    return parse_extrapolation(text)


def write_extrapolation(rows: list[dict[str, Any]]) -> Path:
    """Store measured rows (`moerun.commands.calibrate.extrapolation_errors`) in the catalog,
    dated today; returns the path. The loader reads them back on the next start."""
    path = Path(str(resources.files("moerun.catalog").joinpath("data", FILE)))
    text = (
        "# The measured error of extrapolated predictions: each engine's profile fitted on one "
        "GPU\n# predicting another GPU's closed-loop runs without MTP, as calibration_for "
        "extrapolates\n# (that GPU's tables, kernel scale 1); median absolute % error per "
        "metric. Written by\n"
        "# .venv/bin/python benchmarks/bench_accuracy.py --write-extrapolation\n"
    ) + yaml.safe_dump(
        {"schema": 1, "measured": dt.date.today().isoformat(), "rows": rows}, sort_keys=False
    )
    parse_extrapolation(text)  # what is written must read back
    path.write_text(text, encoding="utf-8")
    extrapolation_errors.cache_clear()
    return path


def extrapolation_band(
    rows: tuple[ExtrapolationError, ...], measured: str, engine: str, home_gpu: str, gpu: str
) -> tuple[dict[str, float], str]:
    """The band of a prediction on `gpu` with `engine`'s profile from `home_gpu`: that pair's
    measured error where it was measured, else the largest error measured for the engine's
    profiles on another GPU (per metric); ({}, why) where the engine has none."""
    mine = [r for r in rows if r.engine == engine]
    if not mine:
        return {}, f"no {engine} profile has been measured on another GPU's runs"
    pair = [r for r in mine if r.from_gpu == home_gpu and r.to_gpu == gpu]
    if pair:
        r = pair[0]
        return dict(r.median_ape_pct), (
            f"measured error of {r.profile} on {r.to_gpu}'s {len(r.runs)} {engine} runs "
            f"({measured}, benchmarks/bench_accuracy.py)"
        )
    band = {
        m: max(r.median_ape_pct[m] for r in mine if m in r.median_ape_pct)
        for m in METRICS
        if any(m in r.median_ape_pct for r in mine)
    }
    pairs = ", ".join(f"{r.profile} on {r.to_gpu}" for r in mine)
    return band, (
        f"largest measured error of a {engine} profile on another GPU's runs ({pairs}; "
        f"{measured}, benchmarks/bench_accuracy.py); {home_gpu} to {gpu} itself not measured"
    )
