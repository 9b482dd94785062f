"""AIConfigurator's own predictions for NVIDIA's silicon points (`data/validation/`), written by
scripts/aic_predictions.py: what the published tool says, printed beside moerun's error. For
comparison only; nothing is fitted to them."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import cache
from importlib import resources

from moerun.errors import CatalogError

FILE = "data/validation/aic_predictions.csv"
SOURCE = "data/validation/aic_predictions.SOURCE.yaml"
# The configuration a prediction was made for, as aic_silicon_sample.csv spells it
POINT_FIELDS = (
    "model_path",
    "gpu",
    "engine",
    "engine_version",
    "precision",
    "isl",
    "osl",
    "concurrency",
    "tp",
    "attention_dp",
    "moe_tp",
    "moe_ep",
)


@dataclass(frozen=True, slots=True)
class AicPrediction:
    """AIConfigurator's predicted median TTFT / TPOT for one silicon point (None: it gave none)."""

    id: str
    point: tuple[str, ...]  # POINT_FIELDS of the silicon row, as text
    aic_model_path: str
    aic_backend_version: str
    ttft_ms: float | None
    tpot_ms: float | None
    note: str


def _opt(v: str) -> float | None:
    return float(v) if v else None


def parse_predictions(text: str, where: str = FILE) -> dict[str, AicPrediction]:
    """Predictions by silicon id from the csv text; CatalogError on a malformed file."""
    out: dict[str, AicPrediction] = {}
    for n, r in enumerate(csv.DictReader(io.StringIO(text)), 2):
        try:
            p = AicPrediction(
                id=r["id"],
                point=tuple(r[f] for f in POINT_FIELDS),
                aic_model_path=r["aic_model_path"],
                aic_backend_version=r["aic_backend_version"],
                ttft_ms=_opt(r["aic_ttft_ms"]),
                tpot_ms=_opt(r["aic_tpot_ms"]),
                note=r["note"],
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise CatalogError(f"{where}: line {n}: unreadable ({exc})") from None
        if p.id in out:
            raise CatalogError(f"{where}: line {n}: duplicate id {p.id!r}")
        if (p.ttft_ms is None) != (p.tpot_ms is None) or any(
            v is not None and v <= 0 for v in (p.ttft_ms, p.tpot_ms)
        ):
            raise CatalogError(f"{where}: line {n}: TTFT and TPOT must both be positive or empty")
        out[p.id] = p
    return out


@cache
def aic_predictions() -> dict[str, AicPrediction]:
    """AIConfigurator's predictions by silicon id (empty when the catalog has none)."""
    f = resources.files("moerun.catalog").joinpath(FILE)
    if not f.is_file():
        return {}
    return parse_predictions(f.read_text("utf-8"))


@cache
def aic_predictions_source() -> str:
    """The package the predictions came from, as their SOURCE file names it."""
    f = resources.files("moerun.catalog").joinpath(SOURCE)
    if f.is_file():
        for line in f.read_text("utf-8").splitlines():
            if line.startswith("package:"):
                return line.split(":", 1)[1].strip()
    return "unknown"
