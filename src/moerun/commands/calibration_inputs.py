"""The files `moerun calibrate` reads: catalog CSVs, `moerun bench` results, and other tools'
results (GuideLLM, vllm bench serve, ...), with the deployment from flags when a file does not
carry it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from moerun.bench.imports import ImportedFile, read_imported
from moerun.catalog.models import model_index
from moerun.catalog.perf.measurements import (
    MeasuredRun,
    load_measurements,
    model_id_for,
    parse_bench_json,
)
from moerun.commands.deployment_input import DEPLOYMENT_KEYS, with_layout
from moerun.errors import CatalogError, UsageError


def deployment_flags(args: argparse.Namespace) -> dict[str, Any] | None:
    """The deployment the flags describe (snake_case keys), or None without --gpu/--num-gpus."""
    if args.gpu is None and args.num_gpus is None:
        return None
    if args.gpu is None or args.num_gpus is None:
        raise UsageError("describe the deployment with both --gpu and --num-gpus")
    return {k: getattr(args, k, None) for k in DEPLOYMENT_KEYS}


def _model_for(flags: dict[str, Any], served: str | None, where: str) -> str:
    if flags.get("model"):
        return str(flags["model"])
    if served and served in model_index():
        return served
    if served:
        try:
            return model_id_for(served)
        except CatalogError:
            pass
    raise UsageError(f"{where}: served model {served!r} is not a catalog model: give --model")


def measured_from_imported(
    imported: ImportedFile, flags: dict[str, Any] | None, where: str
) -> list[MeasuredRun]:
    """Calibration runs from another tool's results, on the deployment the flags give."""
    if flags is None:
        raise UsageError(
            f"{where} is a {imported.tool} result, which does not say what ran: give the "
            "deployment flags (--model --gpu --num-gpus --engine and its layout)"
        )
    dep = with_layout({**flags, "model": _model_for(flags, imported.served_model, where)}, where)
    doc = {
        "deployment": dep,
        "runs": [{"label": r.label, "workload": r.workload, "summary": r.summary}
                 for r in imported.runs],
    }  # fmt: skip
    return parse_bench_json(doc, where)


def load_runs(path: Path, args: argparse.Namespace) -> list[MeasuredRun]:
    """The measured runs in one file `moerun calibrate` was given."""
    flags = deployment_flags(args)
    if path.suffix in (".json", ".jsonl"):
        imported = read_imported(path)
        if imported is not None:
            scaled = imported.time_scaled(args.time_scale or 1.0)
            return measured_from_imported(scaled, flags, str(path))
        doc = _json(path)
        if isinstance(doc, dict) and "runs" in doc:
            dep = doc.get("deployment")
            if dep is None and flags is not None:
                dep = {**flags, "model": _model_for(flags, doc.get("served_model"), str(path))}
            if (
                isinstance(dep, dict)
                and dep.get("model")
                and dep.get("gpu")
                and dep.get("num_gpus")
            ):
                # a results file without a layout ran the default one, as `emulate` does
                doc["deployment"] = with_layout(dep, f"{path}: deployment")
                return parse_bench_json(doc, str(path))
    return load_measurements(path)


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
