"""`moerun simulate`: predicted throughput and latency percentiles for a deployment and load."""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from moerun.catalog.engines import sgl_router_balance
from moerun.catalog.perf.calibration import calibration_for
from moerun.commands.arg_types import acceptance as _acceptance
from moerun.commands.deployment_args import (
    add_deployment_args,
    deployment_from_args,
    mtp_acceptance_choice,
    prompt_kind,
)
from moerun.commands.workload_args import add_workload_args, workload_from_args
from moerun.core.calibrate.calibration import Calibration
from moerun.core.deploy.default_layout import resolve_layout
from moerun.core.deploy.deployment import Deployment
from moerun.core.load.metrics import LATENCY_KEYS
from moerun.core.load.workload import Workload
from moerun.core.perf.step_time import StepBatch, StepModel, StepParams
from moerun.core.sim.build import SimOptions, simulate_deployment
from moerun.core.sim.router import ROUTINGS
from moerun.core.sim.simulator import SimResult
from moerun.errors import UsageError

SOL_KEYS = ("output_tok_per_s", "input_tok_per_s", "req_per_s", *LATENCY_KEYS)


def _disagg(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)[pP](\d+)[dD]", text.strip())
    if not m or int(m.group(1)) < 1 or int(m.group(2)) < 1:
        raise argparse.ArgumentTypeError(f"expected xPyD, e.g. 1P2D, got {text!r}")
    return int(m.group(1)), int(m.group(2))


def add_sim_args(p: argparse.ArgumentParser) -> None:
    """Simulator switches (shared by simulate and emulate)."""
    g = p.add_argument_group("simulation")
    g.add_argument(
        "--mtp-acceptance",
        type=_acceptance,
        help="per-token MTP draft acceptance (default: the catalog's measurement for the "
        "model and the workload's prompts: random for --workload fixed, text otherwise)",
    )
    g.add_argument("--replicas", type=int, default=1, help="replicas behind the router")
    g.add_argument("--routing", choices=ROUTINGS, default="round-robin")
    g.add_argument(
        "--balance-abs",
        type=float,
        metavar="REQUESTS",
        help="prefix-affinity: sgl-router's absolute imbalance threshold, in-flight requests "
        "(the gateway's routing.balance_abs; default: sgl-router's, from the catalog)",
    )
    g.add_argument(
        "--balance-rel",
        type=float,
        metavar="RATIO",
        help="prefix-affinity: sgl-router's relative imbalance threshold, max / min load "
        "(the gateway's routing.balance_rel; default: sgl-router's, from the catalog)",
    )
    g.add_argument("--no-prefix-caching", action="store_true")
    g.add_argument("--no-chunked-prefill", action="store_true")
    g.add_argument(
        "--disaggregate",
        type=_disagg,
        metavar="xPyD",
        help="prefill/decode disaggregation: x prefill and y decode instances",
    )


def sim_options_from_args(args: argparse.Namespace, calibration: Calibration) -> SimOptions:
    """SimOptions from the flags, with the calibration's parameters."""
    if args.replicas < 1:
        raise UsageError("--replicas must be at least 1")
    if args.balance_abs is not None and not args.balance_abs >= 0:
        raise UsageError("--balance-abs must be at least 0 (requests)")
    if args.balance_rel is not None and not args.balance_rel >= 1:
        raise UsageError("--balance-rel must be at least 1 (a ratio of loads)")
    pd = args.disaggregate or (0, 0)
    return SimOptions(
        num_replicas=args.replicas,
        routing=args.routing,
        balance=sgl_router_balance().with_overrides(args.balance_abs, args.balance_rel),
        chunked_prefill=not args.no_chunked_prefill,
        prefix_caching=not args.no_prefix_caching,
        params=calibration.params,
        kv_capacity_factor=calibration.kv_capacity_factor,
        num_prefill=pd[0],
        num_decode=pd[1],
    )


def _coverage(result: SimResult, dep: Deployment, options: SimOptions) -> dict[str, Any]:
    """How much of the predicted step time came from measured kernel tables."""
    tables = options.params.kernels
    out: dict[str, Any] = {"source": tables.source if tables else None}
    if result.trace is not None and result.trace_model is not None:
        out["share_of_step_time"] = round(result.trace_model.run_coverage(result.trace.batches), 4)
        out["over"] = "every simulated step"
    else:
        model = StepModel(dep, options.params)
        # the engine default, or 256 sequences where the engine sizes it from memory (SGLang)
        n = float(dep.default_max_num_seqs or 256)
        ctx = float(dep.effective_max_context) / 4
        b = StepBatch(decode_seqs=n, decode_attended=n * ctx, decode_context=n * ctx)
        out["share_of_step_time"] = round(model.kernel_coverage(b), 4)
        out["over"] = "one full decode step (multi-replica runs are not recorded)"
    return out


def _check_lengths(workload: Workload, max_context: int) -> None:
    """UsageError if a request needs more than the context the deployment holds (prompt plus
    output, as vLLM's and SGLang's max_model_len / context_length count it)."""
    lengths = [s.input_tokens(k) + s.turns[k].output_tokens for s, k in workload.requests()]
    over = [n for n in lengths if n > max_context]
    if over:
        raise UsageError(
            f"{len(over)} of {len(lengths)} requests need more than the {max_context:,}-token "
            f"context (longest {max(over):,} prompt+output tokens); lower --isl/--osl or the "
            "trace's lengths, or raise --max-context up to the model's limit"
        )


def run_simulation(args: argparse.Namespace, dep: Deployment) -> dict[str, Any]:
    """Simulate with the calibrated parameters and at the speed of light."""
    layout = dep.layout_kind(disaggregated=bool(args.disaggregate))
    calibration = calibration_for(dep.gpu.id, dep.engine.name, dep.model.arch.model_type, layout)
    workload, slo = workload_from_args(args)
    _check_lengths(workload, dep.effective_max_context)
    options = sim_options_from_args(args, calibration)
    single = options.num_replicas == 1 and not options.num_prefill
    result = simulate_deployment(dep, workload, options, record=single)
    summary = result.summary(slo)
    summary["kernel_coverage"] = _coverage(result, dep, options)
    sol = simulate_deployment(dep, workload, options, params=StepParams.speed_of_light()).summary(
        slo
    )
    summary["speed_of_light"] = {k: sol[k] for k in SOL_KEYS}
    summary["calibration"] = calibration.describe()
    summary["mtp_acceptance"] = dep.mtp.acceptance
    if dep.mtp.enabled:
        mtp = dep.mtp
        acceptance, source = mtp_acceptance_choice(
            dep.model.name,
            dep.gpu.id,
            dep.engine.name,
            mtp.num_draft_tokens,
            args.mtp_acceptance,
            prompt_kind(args.workload),
        )
        assert acceptance == mtp.acceptance, "the deployment's MTP was settled for other prompts"
        summary["mtp_acceptance_source"] = source
    summary["deployment"] = {
        "model": dep.model.name,
        "gpu": dep.gpu.id,
        "num_gpus": dep.num_gpus,
        "engine": dep.engine.name,
        "layout": dep.parallel.describe(),
        "weights": dep.weights,
        "kv_dtype": dep.kv_dtype,
        "mtp": dep.mtp.num_draft_tokens,
        "mixed_chunk": dep.mixed_chunk and not dep.mtp.enabled,  # SGLang drops it under EAGLE
        "max_prefill_tokens": dep.max_prefill_tokens,
        "replicas": options.num_replicas,
        "disaggregation": None
        if not options.num_prefill
        else f"{options.num_prefill}P{options.num_decode}D",
    }
    summary["workload"] = {
        "name": workload.name,
        "arrival": workload.arrival.kind,
        "num_requests": workload.num_requests,
        "seed": args.seed,
    }
    return summary


def cmd_simulate(args: argparse.Namespace) -> int:
    """Print the prediction."""
    resolved = resolve_layout(*deployment_from_args(args, prompt_kind(args.workload)))
    summary = run_simulation(args, resolved.deployment)
    summary["deployment"]["layout_used"] = resolved.describe()
    if args.json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    else:
        print_summary(Console(), summary)
    return 0


def print_summary(console: Console, s: dict[str, Any]) -> None:
    """A terminal view of a simulation."""
    d = s["deployment"]
    console.print(
        f"[bold]{d['model']}[/] on {d['num_gpus']}x {d['gpu']} ({d['engine']}, "
        f"{d['weights']} weights, MTP {d['mtp']}) x {d['replicas']} replica(s)"
    )
    console.print(f"layout: {d.get('layout_used', d['layout'])}", highlight=False)
    cal = s["calibration"]
    band = ", ".join(f"{k} ±{v:.0f}%" for k, v in cal["error_band_pct"].items())
    console.print(
        f"calibration: {cal['status']} ({cal['note']})"
        + (f"; typical error {band}" if band else "")
    )
    if not cal["error_band_cross_validated"]:
        # a band that is not this GPU and engine's own cross-validated error: say what it
        # rests on
        console.print(f"error band: {cal['error_band_basis']}", highlight=False)
    t = Table()
    t.add_column("metric")
    t.add_column("predicted", justify="right")
    t.add_column("speed of light", justify="right")
    sol = s["speed_of_light"]
    for k in ("output_tok_per_s", "input_tok_per_s", "req_per_s"):
        t.add_row(k, f"{s[k]:,.1f}", f"{sol[k]:,.1f}")
    for k in LATENCY_KEYS:
        for q in ("p50", "p90", "p99"):
            t.add_row(f"{k} {q}", f"{s[k][q]:,.1f}", f"{sol[k][q]:,.1f}")
    console.print(t)
    console.print(
        f"completed {s['num_completed']}/{s['num_requests']} requests; prefix-cache hit rate "
        f"{s['prefix_cache_hit_rate']:.1%}; KV usage mean {s['kv_usage']['mean']:.0%} peak "
        f"{s['kv_usage']['peak']:.0%}; preemptions {s['num_preemptions']}"
    )
    if "goodput_req_per_s" in s:
        console.print(
            f"goodput {s['goodput_req_per_s']:.2f} req/s ({s['slo_attainment']:.0%} met the SLO)"
        )


def register(sub: Any) -> None:
    """Add `moerun simulate`."""
    p = sub.add_parser("simulate", help="predict throughput and latency percentiles")
    add_deployment_args(p, model_positional=False)
    add_workload_args(p)
    add_sim_args(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_simulate)
