"""`moerun plan`: where and how to run the model for a workload, policy and budget.
`moerun fit-table`: where the model fits (GPUs x nodes x weight formats), no workload.

Exit status: 0 for an answer, including "nothing satisfies the constraints" (the output names
the constraint that emptied the list and the closest option); 2 for unusable input (unknown
preset, contradictory policy, malformed values).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from moerun.catalog.engines import get_engine, get_reserve
from moerun.catalog.gpus import get_gpu, load_gpus
from moerun.catalog.models import DEFAULT_MODEL, load_spec
from moerun.catalog.plan_catalog import plan_catalog
from moerun.catalog.plan_data import plan_sources
from moerun.catalog.prices import load_gpu_prices
from moerun.catalog.providers import load_providers
from moerun.catalog.sources import load_sources
from moerun.commands.arg_types import positive_int as _positive_int
from moerun.commands.outdir import check_out_file
from moerun.commands.plan_args import add_plan_args, request_from_args
from moerun.core.deploy.deployment import Deployment
from moerun.core.deploy.engine import ENGINES
from moerun.core.deploy.fit_table import fit_table
from moerun.core.model.kv_cache import KV_DTYPES
from moerun.core.model.weights import WEIGHT_FORMATS
from moerun.core.plan.freshness import MAX_AGE_DAYS, stale_facts, summary_lines, used_facts
from moerun.core.plan.planner import plan
from moerun.errors import UsageError
from moerun.render import reports
from moerun.render.plan_html import render_plan_html
from moerun.render.plan_json import plan_dict
from moerun.render.plan_text import print_plan

FIT_NODE_COUNTS = (1, 2, 4)
FIT_CONTEXT = 200_000
STAGES = {"screen": "screening configurations", "simulate": "simulating finalists"}


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    """A rich progress bar on stderr (only on a terminal)."""
    if not enabled:
        yield None
        return
    bars = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    tasks: dict[str, TaskID] = {}

    def update(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bars.add_task(STAGES.get(stage, stage), total=total)
        bars.update(tasks[stage], completed=done, total=max(total, 1))

    with bars:
        yield update


def _sources() -> dict[str, tuple[str, str, str]]:
    """Every source id the catalog cites: (title, ref, date)."""
    out = {sid: (s.title, s.ref, s.date) for sid, s in load_sources().items()}
    out |= {sid: (s.title, s.ref, s.date) for sid, s in plan_sources().items()}
    return out


def cmd_plan(args: argparse.Namespace) -> int:
    """Plan, then print the terminal summary or JSON, and write the HTML report if asked."""
    if args.html:
        check_out_file(Path(args.html), "--html")
    gpu_ids = set(load_gpus())
    clouds = {p.provider for p in load_gpu_prices()}
    request, overrides = request_from_args(args, gpu_ids, clouds, set(load_providers()))
    catalog = plan_catalog(overrides)
    with _progress(sys.stderr.isatty() and not args.no_progress) as progress:
        result = plan(request, catalog, progress)
    if args.html:
        path = Path(args.html)
        try:
            path.write_text(render_plan_html(result, _sources()), "utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write --html {path}: {exc.strerror or exc}") from exc
    stale = stale_facts(used_facts(result), args.today or dt.date.today())
    width = shutil.get_terminal_size().columns  # honours COLUMNS, like the tables
    for line in summary_lines(stale):
        text = textwrap.fill(f"moerun: warning: {line}", width=width, subsequent_indent="  ")
        sys.stderr.write(text + "\n")
    if args.json:
        data = plan_dict(result, catalog.weight_notes)
        data["warnings"] = [s.message for s in stale]
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        print_plan(Console(), result)
        if args.html:
            Console().print(f"HTML report: {args.html}")
    return 0


def cmd_fit_table(args: argparse.Namespace) -> int:
    """Every catalog GPU at 1, 2 and 4 nodes in every weight format: fits or not, and why."""
    spec = load_spec(args.model or DEFAULT_MODEL)
    gpus = load_gpus()
    chosen = [get_gpu(g) for g in (args.gpus.split(",") if args.gpus else list(gpus))]
    template = Deployment(
        model=spec,
        gpu=chosen[0],
        num_gpus=chosen[0].gpus_per_node,
        engine=get_engine(args.engine),
        reserve=get_reserve(),
        kv_dtype=args.kv_dtype,
        max_context=min(args.context, spec.max_position_embeddings),
    )
    rows = fit_table(template, chosen, FIT_NODE_COUNTS, WEIGHT_FORMATS)
    if args.json:
        data: dict[str, Any] = {
            "model": spec.name,
            "context_tokens": template.effective_max_context,
            "engine": args.engine,
            "kv_dtype": args.kv_dtype,
            "rows": [reports.plan_row_dict(r) for r in rows],
        }
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        reports.print_plan(Console(width=200), spec.name, template.effective_max_context, rows)
    return 0


def register(sub: Any) -> None:
    """Add `moerun plan` and `moerun fit-table`."""
    p = sub.add_parser(
        "plan",
        help="where and how to run the model: self-hosted, managed or hybrid, ranked by cost",
        description="Search GPU clouds and managed APIs for the cheapest way to serve the "
        "workload within the SLO, the policy and the budget.",
    )
    add_plan_args(p)
    out = p.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="the full ranking as JSON")
    out.add_argument("--html", help="write a self-contained HTML report to this file")
    out.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    out.add_argument(
        "--today",
        type=_iso_day,
        help=f"the date to age catalog facts from (default: today); facts the answer uses "
        f"that are older than {MAX_AGE_DAYS} days are warned about",
    )
    p.set_defaults(func=cmd_plan)

    f = sub.add_parser("fit-table", help="where the model fits: GPUs x nodes x weight formats")
    f.add_argument("--model", help=f"catalog id or config.json (default {DEFAULT_MODEL})")
    f.add_argument("--gpus", help="comma-separated GPU ids (default: all in the catalog)")
    f.add_argument("--engine", choices=ENGINES, default="vllm")
    f.add_argument("--kv-dtype", choices=KV_DTYPES, default="fp8")
    f.add_argument("--context", type=_positive_int, default=FIT_CONTEXT)
    f.add_argument("--json", action="store_true")
    f.set_defaults(func=cmd_fit_table)


def _iso_day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date; give YYYY-MM-DD") from None
