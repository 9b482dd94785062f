"""`moerun model list`: every catalog model with its family, parameters, formats and source."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from moerun.catalog.models import load_spec, model_index


def model_rows() -> list[dict[str, Any]]:
    """One row per catalog model; parameter counts are computed from its config.json."""
    rows = []
    for entry in model_index().values():
        spec = load_spec(entry.id)
        rows.append(
            {
                "id": entry.id,
                "family": entry.family,
                "model_type": spec.arch.model_type,
                "total_params_main": spec.total_params_main,
                "total_params_stored": spec.total_params_stored,
                "active_params": spec.active_params,
                "formats": dict(entry.checkpoints),
                "hf_repo": entry.hf_repo,
                "config_status": entry.status,
                "source": entry.source,
                "as_of": entry.as_of,
            }
        )
    return rows


def cmd_model_list(args: argparse.Namespace) -> int:
    """Print the catalog's models (a table, or JSON with --json)."""
    rows = model_rows()
    if args.json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return 0
    table = Table(title="Models in the catalog (parameters computed from each config.json)")
    for col in ("id", "family", "params (B)", "active (B)", "formats", "config.json of"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(
            r["id"],
            r["family"],
            f"{r['total_params_main'] / 1e9:.1f}",
            f"{r['active_params'] / 1e9:.1f}",
            ", ".join(sorted(r["formats"])),
            f"{r['hf_repo']} ({r['config_status'].lower()})",
        )
    Console().print(table)
    Console().print("Where each config.json was copied from: moerun model list --json (source).")
    return 0


def add_list(model_sub: Any) -> None:
    """Register `model list` under the `model` command."""
    p = model_sub.add_parser("list", help="models in the catalog: family, parameters, formats")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_model_list)
