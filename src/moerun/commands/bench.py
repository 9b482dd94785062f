"""`moerun bench URL`: measure an OpenAI-compatible endpoint with moerun's workloads."""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import secrets
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichBar

from moerun.bench.driver import Progress, SweepPoint, run_bench
from moerun.bench.failures import failure_line
from moerun.bench.guidellm_report import write_guidellm_report
from moerun.bench.imports import read_imported
from moerun.bench.imports.detect import KNOWN as KNOWN_IMPORTS
from moerun.bench.openai_api import ENDPOINTS
from moerun.bench.prompts import PromptText
from moerun.bench.records import RequestRecord
from moerun.bench.results import BenchResults, RunResult, jsonable, write_results
from moerun.bench.runner import BenchConfig
from moerun.bench.table import print_runs
from moerun.commands.arg_types import positive_float as _positive_float
from moerun.commands.deployment_args import add_deployment_args, deployment_from_args, prompt_kind
from moerun.commands.outdir import check_out_file
from moerun.commands.simulate import add_sim_args, run_simulation
from moerun.commands.workload_args import add_workload_args, workload_from_args
from moerun.core.deploy.default_layout import resolve_layout
from moerun.core.deploy.deployment import Deployment
from moerun.errors import UsageError

EXIT_INTERRUPTED = 130
EXIT_NOTHING_SUCCEEDED = 2  # as for unusable input: the run measured nothing


def flag_names(adder: Callable[[argparse.ArgumentParser], None]) -> list[str]:
    """The destinations (snake_case names) of the flags an `add_*_args` function adds."""
    p = argparse.ArgumentParser(add_help=False)
    adder(p)
    return list(vars(p.parse_args([])))


def _deployment_flags(p: argparse.ArgumentParser) -> None:
    add_deployment_args(p, model_positional=False)


def _levels(text: str) -> list[int]:
    try:
        levels = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected e.g. 1,4,16, got {text!r}") from None
    if not levels or min(levels) < 1:
        raise argparse.ArgumentTypeError(f"concurrency levels must be >= 1, got {text!r}")
    return levels


class _Bar(Progress):
    """A rich progress bar on stderr."""

    def __init__(self) -> None:
        self.bar: RichBar | None = None
        self.task: TaskID | None = None
        self.num_failed = 0

    def start(self, label: str, total: int) -> None:
        self.num_failed = 0
        self.bar = RichBar(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[failed]} failed"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
        )
        self.task = self.bar.add_task(label, total=total, failed=0)
        self.bar.start()

    def advance(self, record: RequestRecord) -> None:
        assert self.bar is not None and self.task is not None
        self.num_failed += not record.ok
        self.bar.update(self.task, advance=1, failed=self.num_failed)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def sweep_points(args: argparse.Namespace) -> list[SweepPoint]:
    """One workload per sweep point (or the one the flags describe)."""
    names = flag_names(add_workload_args)
    if not args.sweep_concurrency:
        wl, slo = workload_from_args(args)
        return [SweepPoint(_label(args), {k: getattr(args, k) for k in names}, wl, slo)]
    if args.request_rate is not None:
        raise UsageError("--sweep-concurrency sweeps closed loops: drop --request-rate")
    points = []
    for c in args.sweep_concurrency:
        ns = copy.copy(args)
        ns.concurrency = c
        wl, slo = workload_from_args(ns)
        points.append(SweepPoint(f"concurrency {c}", {k: getattr(ns, k) for k in names}, wl, slo))
    return points


def _label(args: argparse.Namespace) -> str:
    if args.request_rate is not None:
        rate = "inf" if math.isinf(args.request_rate) else f"{args.request_rate:g}"
        return f"rate {rate}/s"
    return f"concurrency {args.concurrency or 1}"


def _deployment(args: argparse.Namespace, workload: str) -> Deployment | None:
    """The deployment behind the endpoint (None: not described), its MTP acceptance settled
    for the prompts `workload` sends."""
    if args.gpu is None and args.num_gpus is None:
        if args.compare_sim:
            raise UsageError(
                "--compare-sim needs the deployment behind the endpoint: --model --gpu "
                "--num-gpus --engine (and its layout flags)"
            )
        return None
    # the layout the flags give, else the default rule's: the one `emulate` and `simulate` run
    return resolve_layout(*deployment_from_args(args, prompt_kind(workload))).deployment


def _recorded(args: argparse.Namespace, dep: Deployment) -> dict[str, Any]:
    """The deployment flags for the results file, with the layout that was settled."""
    flags = {k: getattr(args, k) for k in flag_names(_deployment_flags)}
    par = dep.parallel
    return {**flags, "tp": par.tp, "dp": par.dp, "ep": par.ep, "pp": par.pp}


def cmd_bench(args: argparse.Namespace) -> int:
    """Run the benchmark, write the results, print the summary."""
    if args.import_file:
        return _cmd_import(args)
    if not args.url:
        raise UsageError("give the server's URL (or --import FILE to read another tool's results)")
    check_out_file(Path(args.output), "--output")
    if args.html:
        check_out_file(Path(args.html), "--html")
    if args.guidellm_report:
        check_out_file(Path(args.guidellm_report), "--guidellm-report")
    dep = _deployment(args, args.workload)
    points = sweep_points(args)
    salt = args.prompt_salt if args.prompt_salt is not None else secrets.token_hex(4)
    prompts = PromptText.from_tokenizer_file(args.tokenizer, salt=salt)
    try:
        extra = json.loads(args.extra_body) if args.extra_body else {}
    except ValueError as exc:
        raise UsageError(f"--extra-body is not JSON: {exc}") from None
    if not isinstance(extra, dict):
        raise UsageError("--extra-body must be a JSON object")
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}

    def config_for(model: str, time_scale: float) -> BenchConfig:
        return BenchConfig(
            model=model,
            time_scale=args.time_scale or time_scale,
            endpoint=args.endpoint,
            fixed_output=not args.no_fixed_output,
            timeout_s=args.timeout_s,
            extra_body=extra,
        )

    num_gpus = dep.num_gpus * args.replicas if dep is not None else 1
    show_bar = not args.no_progress and sys.stderr.isatty()
    card, runs = run_bench(
        args.url, config_for, prompts, points,
        served_model=args.served_model, num_gpus=num_gpus, headers=headers,
        progress=_Bar() if show_bar else None,
    )  # fmt: skip
    if args.mtp_acceptance is None and card.mtp_acceptance is not None:
        # an emulator drafts at the acceptance its card states: predict with that one
        args.mtp_acceptance = card.mtp_acceptance
        dep = _deployment(args, args.workload)
    results = BenchResults(
        url=args.url,
        endpoint=args.endpoint,
        served_model=card.model,
        token_rule="tokenizer" if prompts.exact else "words",
        prompt_salt=salt,
        deployment=None if dep is None else _recorded(args, dep),
        mtp_acceptance=args.mtp_acceptance,
        runs=tuple(runs),
    )
    write_results(Path(args.output), results)
    if args.guidellm_report:
        scale = args.time_scale or card.time_scale
        write_guidellm_report(Path(args.guidellm_report), results, time_scale=scale)
    interrupted = any(r.interrupted for r in runs)
    records = [rec for r in runs for rec in r.records]
    failures = failure_line(records)
    if records and not any(rec.ok for rec in records):
        # nothing to summarize: say why once, keep the file for the record
        sys.stderr.write(f"moerun: {failures} (results: {args.output})\n")
        return EXIT_INTERRUPTED if interrupted else EXIT_NOTHING_SUCCEEDED
    predicted = _predictions(args, dep, runs) if args.compare_sim and dep is not None else None
    if args.html:
        from moerun.bench.html_report import write_html

        write_html(Path(args.html), results, predicted)
    _print(args, runs, predicted)
    if failures is not None:
        sys.stderr.write(f"moerun: {failures}\n")
    if interrupted:
        sys.stderr.write(f"moerun: interrupted; the results so far are in {args.output}\n")
        return EXIT_INTERRUPTED
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    """Another tool's results, in moerun's metrics, beside `simulate` with --compare-sim."""
    if args.url:
        raise UsageError("--import reads results: drop the URL")
    if args.guidellm_report:
        raise UsageError("--guidellm-report writes a run moerun measured: drop --import")
    path = Path(args.import_file)
    imported = read_imported(path)
    if imported is None:
        raise UsageError(f"{path}: not a results file moerun imports ({KNOWN_IMPORTS})")
    imported = imported.time_scaled(args.time_scale or 1.0)
    # --compare-sim replays fixed lengths only (_simulable)
    dep = _deployment(args, "fixed")
    runs = [RunResult(r.label, r.workload, (), r.summary, _num(r.summary["duration_s"]))
            for r in imported.runs]  # fmt: skip
    if dep is not None:
        for run in runs:
            per_gpu = _num(run.summary["output_tok_per_s"]) / (dep.num_gpus * args.replicas)
            run.summary["output_tok_per_s_per_gpu"] = per_gpu
    predicted = None
    if args.compare_sim and dep is not None:
        predicted = _predictions(args, dep, [_simulable(run, path) for run in runs])
    for note in imported.notes:
        sys.stderr.write(f"moerun: {path}: {note}\n")
    _print(args, runs, predicted, title=f"{imported.tool} ({path.name})")
    return 0


def _num(value: object) -> float:
    return float(value) if isinstance(value, int | float) else float("nan")


def _simulable(run: RunResult, path: Path) -> RunResult:
    """The run with workload flags `simulate` takes; UsageError for loads it cannot replay."""
    wl = dict(run.workload)
    if wl.get("workload") != "fixed":
        raise UsageError(
            f"{path}: {run.label}: --compare-sim needs fixed prompt and output lengths "
            f"(the file describes {wl.get('workload')!r})"
        )
    rate = wl.get("request_rate")
    flags: dict[str, Any] = {"workload": "fixed", "isl": wl["isl"], "osl": wl["osl"]}
    flags["num_requests"] = wl["num_requests"]
    if wl.get("concurrency"):
        flags.update(concurrency=int(wl["concurrency"]), request_rate=None)
    elif rate is not None and wl.get("arrivals", "poisson") == "poisson":
        flags.update(concurrency=None, request_rate=float(rate))
    else:
        raise UsageError(f"{path}: {run.label}: moerun simulates closed loops and Poisson rates")
    return RunResult(run.label, flags, (), run.summary, run.duration_s)


def _predictions(
    args: argparse.Namespace, dep: Deployment, runs: list[RunResult]
) -> list[dict[str, Any]]:
    out = []
    for run in runs:
        ns = copy.copy(args)
        for k, v in run.workload.items():
            setattr(ns, k, v)
        out.append(run_simulation(ns, dep))
    return out


def _print(
    args: argparse.Namespace,
    runs: list[RunResult],
    predicted: list[dict[str, Any]] | None,
    *,
    title: str = "moerun bench",
) -> None:
    if args.json:
        docs: list[dict[str, Any]] = []
        for i, run in enumerate(runs):
            doc = {"label": run.label, "workload": run.workload, **run.summary}
            if predicted is not None:
                doc["predicted"] = {k: v for k, v in predicted[i].items() if k in run.summary}
            docs.append(doc)
        single = len(docs) == 1 and not args.sweep_concurrency and not args.import_file
        out: Any = docs[0] if single else docs
        # NaN (no sample) as null and an infinite rate as "inf", as in the results file
        sys.stdout.write(json.dumps(jsonable(out), indent=2, default=str) + "\n")
        return
    print_runs(Console(), runs, predicted, title=title)
    if not args.import_file:
        Console(stderr=True).print(
            f"results: {args.output}" + (f", report: {args.html}" if args.html else "")
        )


def register(sub: Any) -> None:
    """Add `moerun bench`."""
    p = sub.add_parser(
        "bench",
        help="measure an OpenAI-compatible endpoint (vLLM, SGLang, a gateway, moerun emulate)",
    )
    p.add_argument(
        "url", nargs="?", help="server root, e.g. http://127.0.0.1:8000 (a trailing /v1 is fine)"
    )
    g = p.add_argument_group("bench")
    g.add_argument("--endpoint", choices=sorted(ENDPOINTS), default="chat")
    g.add_argument("--served-model", help="model id to send (default: the first of /v1/models)")
    g.add_argument("--tokenizer", help="a local tokenizer.json: prompts of exact token counts")
    g.add_argument(
        "--prompt-salt",
        help="varies every prompt's text (default: a new one per run, so a run never finds the "
        "previous run's prompts in the server's prefix cache); give one to repeat a run exactly",
    )
    g.add_argument("--sweep-concurrency", type=_levels, help="closed-loop levels, e.g. 1,4,16,64")
    g.add_argument(
        "--time-scale",
        type=_positive_float,
        help="the endpoint runs this many times faster than real time (default: what `moerun "
        "emulate` reports in /v1/models, else 1; give it when a gateway sits in front)",
    )
    g.add_argument("--output", default="moerun-bench.json", help="results file (JSON)")
    g.add_argument("--html", help="also write a self-contained HTML report")
    g.add_argument(
        "--guidellm-report",
        metavar="FILE",
        help="also write the run (every sweep level) as a GuideLLM 0.8 benchmarks report "
        "(JSON; the fields and definitions are in moerun.bench.guidellm_report)",
    )
    g.add_argument(
        "--json",
        action="store_true",
        help="print the summary as JSON (a list per sweep): label, workload (the flags), "
        "num_requests/num_completed/num_failed, duration_s, req_per_s, input/output/total "
        "tok_per_s (and per GPU), total_input/output/cached_tokens, prefix_cache_hit_rate, "
        "workload_prefix_hit_rate, ttft_ms/tpot_ms/itl_ms/e2e_ms {mean, p50, p90, p99}, with "
        "an SLO goodput_req_per_s, slo_attainment and slo, with --compare-sim `predicted`; "
        "a statistic without a sample is null",
    )
    g.add_argument("--compare-sim", action="store_true", help="print measured vs `simulate`")
    g.add_argument(
        "--import",
        dest="import_file",
        metavar="FILE",
        help=f"measure nothing: read another tool's results ({KNOWN_IMPORTS}) in moerun's "
        "metrics (with --compare-sim and the deployment flags: beside `simulate`)",
    )
    g.add_argument(
        "--no-fixed-output",
        action="store_true",
        help="do not send ignore_eos/min_tokens (for servers that reject them)",
    )
    g.add_argument("--extra-body", help="JSON object merged into every request body")
    g.add_argument("--timeout-s", type=float, default=600.0, help="per-request timeout")
    g.add_argument("--api-key", default=os.environ.get("OPENAI_API_KEY"), help="bearer token")
    g.add_argument("--no-progress", action="store_true")
    add_deployment_args(p, model_positional=False)
    add_workload_args(p)
    add_sim_args(p)
    p.set_defaults(func=cmd_bench)
