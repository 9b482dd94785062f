"""`moerun catalog check`: list every catalog fact without a source or a real date.

Exit status: 0 when every fact and cited source is sourced and dated, 3 when some are not
(each is printed, one line apiece, naming the file and the entry), 2 for a bad --dir.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from moerun.catalog.audit import Audit, audit_catalog, audit_files
from moerun.errors import UsageError

EXIT_OK, EXIT_PROBLEMS = 0, 3


def register(sub: Any) -> None:
    """Add `catalog check` to the CLI's subparsers."""
    catalog = sub.add_parser("catalog", help="the catalog's own health")
    catalog_sub = catalog.add_subparsers(dest="catalog_command")
    check = catalog_sub.add_parser(
        "check", help="every fact sourced and dated? lists those that are not (exit 3)"
    )
    check.add_argument(
        "--dir", help="check the YAML files under this folder instead of the packaged catalog"
    )
    check.add_argument("--json", action="store_true")
    check.set_defaults(func=cmd_catalog_check)


def cmd_catalog_check(args: argparse.Namespace) -> int:
    """Run the check and print what it found."""
    audit = _audit_dir(Path(args.dir)) if args.dir else audit_catalog()
    if args.json:
        data = {
            "ok": audit.ok,
            "num_facts": audit.num_facts,
            "num_sources": audit.num_sources,
            "problems": [
                {"file": p.file, "where": p.where, "problem": p.problem} for p in audit.problems
            ],
        }
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        for p in audit.problems:
            sys.stdout.write(f"{p}\n")
        verdict = "ok" if audit.ok else f"{len(audit.problems)} problem(s)"
        sys.stdout.write(
            f"catalog check: {audit.num_facts} facts and {audit.num_sources} cited sources "
            f"checked: {verdict}\n"
        )
    return EXIT_OK if audit.ok else EXIT_PROBLEMS


def _audit_dir(folder: Path) -> Audit:
    if not folder.is_dir():
        raise UsageError(f"--dir {folder}: not a folder; give the folder holding catalog YAML")
    files = sorted([*folder.rglob("*.yaml"), *folder.rglob("*.csv")])
    if not files:
        raise UsageError(f"--dir {folder}: no .yaml or .csv files in it")
    return audit_files((str(p.relative_to(folder)), p.read_text("utf-8")) for p in files)
