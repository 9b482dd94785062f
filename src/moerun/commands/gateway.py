"""`moerun gateway` (serve the OpenAI-compatible gateway) and `moerun usage` (spend report)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from moerun.errors import UsageError

EXIT_OK = 0


def register(sub: Any) -> None:
    """Add the `gateway` and `usage` commands to the CLI's subparsers."""
    gw = sub.add_parser("gateway", help="OpenAI-compatible gateway over replicas and managed APIs")
    gw.add_argument("--config", required=True, help="gateway YAML file")
    gw.add_argument("--host", default="127.0.0.1")
    gw.add_argument("--port", type=int, default=8080)
    gw.add_argument("--check", action="store_true", help="validate the config and exit")
    gw.set_defaults(func=cmd_gateway)

    usage = sub.add_parser("usage", help="spend by key and backend from the gateway's ledger")
    src = usage.add_mutually_exclusive_group(required=True)
    src.add_argument("--database-url", help="e.g. sqlite:///moerun-usage.db")
    src.add_argument("--config", help="take database_url from a gateway config")
    usage.add_argument("--since", help="YYYY-MM-DD (UTC), inclusive")
    usage.add_argument("--until", help="YYYY-MM-DD (UTC), exclusive")
    usage.add_argument("--json", action="store_true")
    usage.set_defaults(func=cmd_usage)


def cmd_gateway(args: argparse.Namespace) -> int:
    """Validate the config, then serve until interrupted."""
    from moerun.serve.gateway.config import load_config

    config = load_config(args.config, os.environ)
    if config.keys is None:
        sys.stderr.write(
            "moerun: warning: the config has no `keys`: the gateway accepts unauthenticated "
            "requests and applies no policy\n"
        )
    if args.check:
        sys.stdout.write(
            f"{args.config}: ok ({len(config.backends)} backends, {len(config.models)} models)\n"
        )
        return EXIT_OK
    from moerun.serve.gateway.server import serve

    sys.stderr.write(f"moerun gateway on http://{args.host}:{args.port}/v1\n")
    serve(config, args.host, args.port)
    return EXIT_OK


def _day(text: str | None, flag: str) -> float | None:
    if text is None:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise UsageError(f"{flag}: expected YYYY-MM-DD, got {text!r}") from None


def cmd_usage(args: argparse.Namespace) -> int:
    """Print spend by key and backend."""
    from moerun.store.report import spend_by_key_backend

    url = args.database_url
    if url is None:
        from moerun.serve.gateway.config import load_config

        url = load_config(args.config, os.environ).database_url
    rows = spend_by_key_backend(url, _day(args.since, "--since"), _day(args.until, "--until"))
    if args.json:
        data = {
            "rows": [asdict(r) for r in rows],
            "total_cost_usd": sum(r.cost_usd for r in rows),
            "num_requests": sum(r.num_requests for r in rows),
        }
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return EXIT_OK
    header = f"{'key':<20} {'backend':<20} {'requests':>9} {'errors':>7} {'input':>11} "
    header += f"{'cached':>11} {'output':>11} {'cost USD':>12}"
    lines = [header]
    for r in rows:
        lines.append(
            f"{r.key_name:<20} {r.backend:<20} {r.num_requests:>9} {r.num_errors:>7} "
            f"{r.num_input_tokens:>11} {r.num_cached_tokens:>11} {r.num_output_tokens:>11} "
            f"{r.cost_usd:>12.6f}"
        )
    total = sum(r.cost_usd for r in rows)
    lines.append(
        f"{'total':<20} {'':<20} {sum(r.num_requests for r in rows):>9} {'':>7} "
        f"{'':>11} {'':>11} {'':>11} {total:>12.6f}"
    )
    sys.stdout.write("\n".join(lines) + "\n")
    return EXIT_OK
