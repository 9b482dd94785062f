"""`moerun schema NAME`: the JSON Schema of a file format moerun reads or writes."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from moerun.errors import UsageError


def cmd_schema(args: argparse.Namespace) -> int:
    """Print the schema, or the list of formats."""
    from moerun.formats.schemas import FORMATS, json_schema

    if args.name is None:
        for name, (_, what) in FORMATS.items():
            sys.stdout.write(f"{name:16} {what}\n")
        return 0
    if args.name not in FORMATS:
        raise UsageError(f"unknown format {args.name!r}; formats: {', '.join(FORMATS)}")
    sys.stdout.write(json.dumps(json_schema(args.name), indent=2) + "\n")
    return 0


def register(sub: Any) -> None:
    """Add `moerun schema`."""
    p = sub.add_parser("schema", help="JSON Schema of a file format (docs/formats.md)")
    p.add_argument("name", nargs="?", help="plan-config, prices, gateway-config, trace, ...")
    p.set_defaults(func=cmd_schema)
