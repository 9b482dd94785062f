#!/usr/bin/env python3
"""AIConfigurator's own TTFT / TPOT predictions for moerun's silicon validation points.

    python scripts/aic_predictions.py                     # aiconfigurator 0.12.0
    python scripts/aic_predictions.py --venv /tmp/aic-venv --version 0.12.0

`src/moerun/catalog/data/validation/aic_silicon_sample.csv` holds NVIDIA's measured end-to-end
points from the aiconfigurator-core wheel (scripts/extract_kernel_tables.py), measurements only.
This script asks AIConfigurator itself what it predicts for each distinct point, so that
`benchmarks/bench_accuracy.py` can print AIConfigurator's error beside moerun's.

It installs `aiconfigurator-core==VERSION` and `aiconfigurator==VERSION` (the package with the
estimation API behind `aiconfigurator cli estimate`) into their own virtual environment
(default ~/.cache/moerun/aic-venv; pandas and the rest live there, never in moerun) and runs
itself there. For each point it calls `aiconfigurator.cli.api.cli_estimate` the way
`aiconfigurator cli estimate --estimate-mode agg` does, with the parameters of the point's row
in the wheel's own `systems/silicon_sample.csv` (batch size, TP, attention DP, MoE TP / EP,
GEMM and MoE quantisation) and the CLI's defaults for everything else: database mode SILICON,
the performance-database version AIConfigurator selects when none is pinned (its `current`
slot; the measured engine builds, e.g. SGLang 0.5.9 or a GLM-5 nightly, are not queryable
versions), KV-cache / FMHA quantisation inferred from the checkpoint, context-token budget =
input length. The model is the row's own when AIConfigurator ships its config, else the
checkpoint AIConfigurator's InferenceX adapter maps that model and precision to
(`sdk/config_adapter/inferencex.py` MODEL_PATHS, e.g. GLM-5 fp8 -> zai-org/GLM-5-FP8). No network:
only the configs bundled in the wheel are used.

Writes (both overwritten):
  src/moerun/catalog/data/validation/aic_predictions.csv          one row per silicon id
  src/moerun/catalog/data/validation/aic_predictions.SOURCE.yaml  package, date, settings, license
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VALIDATION = ROOT / "src" / "moerun" / "catalog" / "data" / "validation"
SILICON_CSV = VALIDATION / "aic_silicon_sample.csv"
OUT_CSV = VALIDATION / "aic_predictions.csv"
OUT_SOURCE = VALIDATION / "aic_predictions.SOURCE.yaml"
DEFAULT_VERSION = "0.12.0"
DEFAULT_VENV = Path.home() / ".cache" / "moerun" / "aic-venv"
CHILD_ENV = "MOERUN_AIC_CHILD"
# InferenceX model aliases of the silicon sample's model paths (AIConfigurator's adapter keys)
INFERENCEX_ALIAS = {
    "zhipuai/GLM-5": "glm5",
    "deepseek-ai/DeepSeek-V3": "dsr1",
    "deepseek-ai/DeepSeek-R1": "dsr1",
}
# What makes a point distinct: the measured configuration, not the run that measured it
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
OUT_FIELDS = (
    "id",
    *POINT_FIELDS,
    "aic_model_path",
    "aic_backend_version",
    "aic_database_mode",
    "aic_batch_size",
    "aic_gemm_quant",
    "aic_moe_quant",
    "aic_kvcache_quant",
    "aic_fmha_quant",
    "aic_ttft_ms",
    "aic_tpot_ms",
    "note",
)
LICENSE_NOTICE = (
    "Copyright (c) 2025-2026 NVIDIA CORPORATION & AFFILIATES. All rights reserved. "
    "Licensed under the Apache License, Version 2.0 "
    "(http://www.apache.org/licenses/LICENSE-2.0); predictions computed with AIConfigurator's "
    "estimation API by scripts/aic_predictions.py in moerun."
)


def _sig(x: float) -> float:
    """Four significant digits, as the silicon sample is stored."""
    return float(f"{x:.4g}")


def point_key(row: dict[str, str]) -> tuple[str, ...]:
    """The configuration that identifies a distinct silicon point."""
    return tuple(row[f] for f in POINT_FIELDS)


def distinct_points(rows: Iterable[dict[str, str]]) -> dict[tuple[str, ...], list[str]]:
    """Silicon ids grouped by their configuration, in file order."""
    points: dict[tuple[str, ...], list[str]] = {}
    for r in rows:
        points.setdefault(point_key(r), []).append(r["id"])
    return points


def estimate_kwargs(
    wheel_row: dict[str, str], model_path: str, database_mode: str
) -> dict[str, Any]:
    """`cli_estimate` arguments for one row of the wheel's silicon_sample.csv (agg mode)."""

    def num(key: str) -> int:
        v = wheel_row[key]
        return int(float(v)) if v else 1

    kwargs: dict[str, Any] = {
        "model_path": model_path,
        "system_name": wheel_row["system"],
        "mode": "agg",
        "backend_name": wheel_row["backend"],
        "database_mode": database_mode,
        "isl": int(wheel_row["isl"]),
        "osl": int(wheel_row["osl"]),
        "batch_size": num("batch_size"),
        "tp_size": num("tp_size"),
        "pp_size": num("pp_size"),
        "attention_dp_size": num("attention_dp_size"),
        "moe_tp_size": num("moe_tp_size"),
        "moe_ep_size": num("moe_ep_size"),
    }
    if wheel_row["gemm_quant_mode"]:
        kwargs["gemm_quant_mode"] = wheel_row["gemm_quant_mode"]
    if wheel_row["moe_quant_mode"]:
        kwargs["moe_quant_mode"] = wheel_row["moe_quant_mode"]
    return kwargs


def _aic_model_path(model_path: str, precision: str) -> str:
    """The bundled checkpoint config AIConfigurator itself would use for this model."""
    from importlib import resources

    from aiconfigurator.sdk.config_adapter.inferencex import MODEL_PATHS

    configs = resources.files("aiconfigurator_core").joinpath("model_configs")

    def bundled(path: str) -> bool:
        return configs.joinpath(path.replace("/", "--") + "_config.json").is_file()

    if bundled(model_path):
        return model_path
    mapped = MODEL_PATHS.get((INFERENCEX_ALIAS.get(model_path, ""), precision))
    if mapped and bundled(mapped):
        return str(mapped)
    raise SystemExit(f"error: AIConfigurator ships no config for {model_path} ({precision})")


def child(args: argparse.Namespace) -> int:
    """Inside the AIConfigurator venv: predict every distinct point and write the files."""
    import logging
    from importlib import metadata, resources

    from aiconfigurator.cli.api import cli_estimate

    logging.disable(logging.WARNING)  # AIConfigurator logs every data fallback it takes
    wheel_csv = resources.files("aiconfigurator_core").joinpath("systems/silicon_sample.csv")
    wheel_rows = {r["id"]: r for r in csv.DictReader(wheel_csv.open(encoding="utf-8"))}
    rows = list(csv.DictReader(args.silicon.open(encoding="utf-8")))
    by_id = {r["id"]: r for r in rows}
    points = distinct_points(rows)
    out: list[dict[str, Any]] = []
    started = time.monotonic()
    for n, (key, ids) in enumerate(points.items(), 1):
        first = by_id[ids[0]]
        wheel_row = wheel_rows.get(first["id"])
        if wheel_row is None:
            raise SystemExit(f"error: {first['id']} is not in the wheel's silicon_sample.csv")
        model = _aic_model_path(first["model_path"], first["precision"])
        kwargs = estimate_kwargs(wheel_row, model, args.database_mode)
        cells: dict[str, Any] = {
            "aic_model_path": model,
            "aic_database_mode": args.database_mode,
            "aic_batch_size": kwargs["batch_size"],
            "aic_gemm_quant": kwargs.get("gemm_quant_mode", ""),
            "aic_moe_quant": kwargs.get("moe_quant_mode", ""),
        }
        try:
            res = cli_estimate(**kwargs)
        except Exception as exc:  # AIConfigurator raises many types; the reason is recorded
            cells["note"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
        else:
            ttft, tpot = float(res.ttft), float(res.tpot)
            ok = math.isfinite(ttft) and math.isfinite(tpot) and ttft > 0 and tpot > 0
            cells.update(
                aic_backend_version=res.backend_version,
                aic_kvcache_quant=res.raw.get("kvcache", ""),
                aic_fmha_quant=res.raw.get("fmha", ""),
                aic_ttft_ms=_sig(ttft) if ok else "",
                aic_tpot_ms=_sig(tpot) if ok else "",
                note="" if ok else f"non-positive estimate ttft={ttft} tpot={tpot}",
            )
        for i in ids:
            out.append({**{f: by_id[i][f] for f in ("id", *POINT_FIELDS)}, **cells})
        print(
            f"[{n}/{len(points)}] {key[1]} {key[0]} {key[4]} {key[5]}x{key[6]} c{key[7]}: "
            f"ttft {cells.get('aic_ttft_ms', '-')} tpot {cells.get('aic_tpot_ms', '-')} "
            f"{cells.get('note', '')} ({time.monotonic() - started:.0f} s)",
            flush=True,
        )
    write(out, args, metadata.version("aiconfigurator"), metadata.version("aiconfigurator-core"))
    return 0


def write(out: list[dict[str, Any]], args: argparse.Namespace, aic: str, core: str) -> None:
    """The predictions csv and its SOURCE entry."""
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=OUT_FIELDS, restval="")
        w.writeheader()
        w.writerows(out)
    versions = sorted({r.get("aic_backend_version", "") for r in out} - {""})
    failed = sum(1 for r in out if not r.get("aic_tpot_ms"))
    settings = (
        "cli_estimate (aiconfigurator cli estimate) mode=agg, "
        f"database_mode={args.database_mode}, backend_version unpinned "
        f"(AIConfigurator's current slot: {', '.join(versions) or 'none'}), batch_size / tp / "
        "pp / attention_dp / moe_tp / moe_ep / gemm_quant_mode / moe_quant_mode from the "
        "point's row of the wheel's systems/silicon_sample.csv, kvcache / fmha / comm "
        "quantisation inferred by AIConfigurator, ctx_tokens = isl, no prefix, no MTP; model "
        "config bundled in the wheel (the row's model_path, else AIConfigurator's InferenceX "
        "MODEL_PATHS for that model and precision); HF_HUB_OFFLINE=1"
    )
    args.source.write_text(
        "# aic_predictions.csv: AIConfigurator's own predicted TTFT / TPOT (ms) for every point\n"
        "# of aic_silicon_sample.csv, for comparison only (moerun never fits to them).\n"
        "# Written by scripts/aic_predictions.py; do not edit by hand.\n"
        f"package: aiconfigurator=={aic} with aiconfigurator-core=={core}\n"
        f"source: https://pypi.org/project/aiconfigurator/{aic}/ "
        f"(aiconfigurator.cli.api.cli_estimate)\n"
        f"as_of: '{datetime.date.today().isoformat()}'\n"
        f"settings: {json.dumps(settings)}\n"
        f"rows: {len(out)}\n"
        f"rows_without_prediction: {failed}\n"
        "license: Apache-2.0\n"
        f"notice: {json.dumps(LICENSE_NOTICE)}\n",
        encoding="utf-8",
    )
    print(f"wrote {len(out)} rows ({failed} without a prediction) to {args.out}")


def _installed(py: Path, version: str) -> bool:
    probe = (
        "from importlib import metadata as m; "
        "print(m.version('aiconfigurator'), m.version('aiconfigurator-core'))"
    )
    res = subprocess.run([str(py), "-c", probe], capture_output=True, text=True)
    return res.returncode == 0 and res.stdout.split() == [version, version]


def parent(args: argparse.Namespace, argv: list[str]) -> int:
    """Make (or reuse) the AIConfigurator venv and run this script inside it."""
    py = args.venv / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(args.venv)], check=True)
    if not _installed(py, args.version):
        pkgs = [f"aiconfigurator-core=={args.version}", f"aiconfigurator=={args.version}"]
        subprocess.run([str(py), "-m", "pip", "install", "-q", *pkgs], check=True)
    env = {**os.environ, CHILD_ENV: "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run([str(py), __file__, *argv], env=env).returncode


def main(argv: list[str] | None = None) -> int:
    args_list = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--version", default=DEFAULT_VERSION, help="aiconfigurator(-core) version")
    ap.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    ap.add_argument("--silicon", type=Path, default=SILICON_CSV)
    ap.add_argument("--out", type=Path, default=OUT_CSV)
    ap.add_argument("--source", type=Path, default=OUT_SOURCE)
    ap.add_argument("--database-mode", default="SILICON", help="AIConfigurator's CLI default")
    args = ap.parse_args(args_list)
    if not args.silicon.is_file():
        print(f"error: no silicon sample at {args.silicon}", file=sys.stderr)
        return 2
    if os.environ.get(CHILD_ENV):
        return child(args)
    return parent(args, args_list)


if __name__ == "__main__":
    raise SystemExit(main())
