"""Per-architecture residuals (`data/architecture_residual.yaml`): what one model architecture
costs per engine step beyond another's, on the same GPU, engine version and benchmark harness.

A profile is fitted on runs of some architectures (`CalibrationProfile.model_types`). Where
the catalog holds closed-loop runs of two architectures on one GPU with one engine version
(InferenceX's SGLang 0.5.12 DeepSeek-R1 and GLM-5 runs on 8x B200), a base profile fitted on
the first, with every parameter held but the per-step overhead, fitted on the second, measures
the second's extra per-step time: launches and kernels the measured tables do not see. A
profile of that engine version fitted on the first architecture predicts the second with it
added (`catalog.perf.calibration.for_model`); the runs it was fitted on are then never used to
measure that prediction's error. Written by
`benchmarks/bench_accuracy.py --write-extrapolation`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

from moerun.catalog.files import read_measured_rows, read_package_file, write_measured_rows
from moerun.core.perf.step_time import StepParams

FILE = "architecture_residual.yaml"


@dataclass(frozen=True)
class ArchitectureResidual:
    """The extra seconds per engine step of `to_model_type` over `from_model_type`."""

    engine: str
    engine_version: str
    gpu: str  # where it was measured
    from_model_type: str
    to_model_type: str
    base_runs: tuple[str, ...]  # the runs the base profile was fitted on
    runs: tuple[str, ...]  # the runs of `to_model_type` the residual was fitted on
    step_overhead_s: float
    in_sample_mape: dict[str, float]

    def describe(self) -> str:
        """One line for a calibration note."""
        return (
            f"{self.to_model_type} costs {self.step_overhead_s * 1e3:+.1f} ms per step over "
            f"{self.from_model_type} ({self.engine} {self.engine_version}, measured on "
            f"{self.gpu}: {len(self.runs)} runs against {len(self.base_runs)})"
        )


def parse_residuals(text: str) -> tuple[tuple[ArchitectureResidual, ...], str]:
    """The rows of an architecture_residual.yaml text, and the date they were measured."""
    return read_measured_rows(text, FILE, _residual_row)


def _residual_row(row: dict[str, Any]) -> ArchitectureResidual:
    r = ArchitectureResidual(
        engine=str(row["engine"]),
        engine_version=str(row["engine_version"]),
        gpu=str(row["gpu"]),
        from_model_type=str(row["from_model_type"]),
        to_model_type=str(row["to_model_type"]),
        base_runs=tuple(str(x) for x in row["base_runs"]),
        runs=tuple(str(x) for x in row["runs"]),
        step_overhead_s=float(row["step_overhead_s"]),
        in_sample_mape={k: float(v) for k, v in (row.get("in_sample_mape") or {}).items()},
    )
    if r.from_model_type == r.to_model_type:
        raise ValueError("the two architectures are the same")
    if not r.runs or not r.base_runs or set(r.runs) & set(r.base_runs):
        raise ValueError("needs runs of each architecture, none of them shared")
    if not -0.05 <= r.step_overhead_s <= 0.2:
        raise ValueError(f"step_overhead_s {r.step_overhead_s} is not a per-step time")
    return r


@cache
def architecture_residuals() -> tuple[ArchitectureResidual, ...]:
    """The catalog's measured architecture residuals."""
    return parse_residuals(read_package_file(FILE))[0]


def residual_for(
    engine: str, engine_version: str, model_types: tuple[str, ...], model_type: str | None
) -> ArchitectureResidual | None:
    """The residual a profile of `engine` `engine_version` fitted on `model_types` adds for
    `model_type` (None: none measured, or the profile's runs served that architecture)."""
    if not model_type or model_type in model_types:
        return None
    for r in architecture_residuals():
        same = (r.engine, r.engine_version, r.to_model_type) == (engine, engine_version, model_type)
        if same and r.from_model_type in model_types:
            return r
    return None


def with_residual(params: StepParams, residual: ArchitectureResidual | None) -> StepParams:
    """`params` with the residual's per-step time added (unchanged without one)."""
    if residual is None:
        return params
    return replace(params, step_overhead_s=params.step_overhead_s + residual.step_overhead_s)


def write_residuals(rows: list[dict[str, Any]]) -> Path:
    """Store measured rows (`moerun.commands.calibrate.architecture_residual_rows`) in the
    catalog, dated today; returns the path."""
    path = write_measured_rows(
        FILE,
        "What one model architecture costs per engine step beyond another, on the same GPU,\n"
        "engine version and harness: a base profile fitted on base_runs, every parameter held\n"
        "but the per-step overhead, fitted on runs (closed loop, no MTP, split fit).\n"
        "Written by\n"
        ".venv/bin/python benchmarks/bench_accuracy.py --write-extrapolation",
        rows,
        parse_residuals,
    )
    architecture_residuals.cache_clear()
    return path
