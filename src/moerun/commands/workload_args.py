"""The workload flags, defined once for `moerun simulate` and `moerun bench`."""

from __future__ import annotations

import argparse
import json
import math
import random
from pathlib import Path

from moerun.commands.arg_types import nonneg_float as _nonneg_float
from moerun.commands.arg_types import nonneg_int as _nonneg_int
from moerun.commands.arg_types import positive_float as _positive_float
from moerun.commands.arg_types import positive_int as _positive_int
from moerun.commands.arg_types import request_rate as _rate
from moerun.core.load.metrics import Slo
from moerun.core.load.public_traces import (
    is_mooncake_line,
    parse_azure_csv,
    parse_mooncake,
    scale_and_cap,
)
from moerun.core.load.trace import TraceError, parse_trace
from moerun.core.load.workload import AgenticShape, Arrival, LengthDist, Workload
from moerun.errors import UsageError

WORKLOAD_KINDS = ("fixed", "agentic")
DEFAULT_NUM_REQUESTS = 200
DEFAULT_NUM_SESSIONS = 32


def add_workload_args(p: argparse.ArgumentParser) -> None:
    """The workload flag group (shared by simulate and bench)."""
    g = p.add_argument_group("workload")
    g.add_argument(
        "--workload",
        default="fixed",
        help="fixed (every prompt --isl, every output --osl), agentic (sessions of tool-call "
        "turns with a growing shared prefix), or a trace file: moerun JSONL "
        "(moerun.core.load.trace), Mooncake JSONL (hash_ids of 512-token blocks) or Azure "
        "LLM inference CSV",
    )
    g.add_argument("--isl", type=_positive_int, default=1024, help="input tokens (fixed)")
    g.add_argument("--osl", type=_positive_int, default=128, help="output tokens (fixed)")
    g.add_argument(
        "--shared-prefix",
        type=_nonneg_int,
        default=0,
        help="tokens of --isl shared as a system prompt",
    )
    g.add_argument("--num-prefixes", type=_positive_int, default=1, help="distinct shared prefixes")
    load = g.add_mutually_exclusive_group()
    load.add_argument("--concurrency", type=_positive_int, help="closed loop: requests in flight")
    load.add_argument("--request-rate", type=_rate, help="Poisson arrivals per second, or inf")
    g.add_argument(
        "--num-requests",
        type=_positive_int,
        help=f"requests (default {DEFAULT_NUM_REQUESTS}); with a trace, replay at most this many",
    )
    g.add_argument(
        "--trace-speedup",
        type=_positive_float,
        default=1.0,
        help="replay a trace this many times faster (0.5: twice as slow)",
    )
    g.add_argument(
        "--num-sessions",
        type=_positive_int,
        help=f"agentic sessions (default {DEFAULT_NUM_SESSIONS})",
    )
    g.add_argument(
        "--turns", type=_positive_int, default=12, help="agentic: mean turns per session"
    )
    g.add_argument("--system-tokens", type=_nonneg_int, default=8000, help="agentic: system prompt")
    g.add_argument(
        "--tool-tokens", type=_positive_int, default=2000, help="agentic: mean tool output per turn"
    )
    g.add_argument(
        "--turn-output", type=_positive_int, default=400, help="agentic: mean output per turn"
    )
    g.add_argument(
        "--think-s", type=_nonneg_float, default=2.0, help="agentic: pause between turns"
    )
    g.add_argument("--seed", type=int, default=0, help="random seed (same seed, same workload)")
    g.add_argument("--slo-ttft-ms", type=_nonneg_float, help="goodput: TTFT bound")
    g.add_argument("--slo-tpot-ms", type=_nonneg_float, help="goodput: TPOT bound")


def arrival_from_args(args: argparse.Namespace) -> Arrival:
    """Closed loop, Poisson rate, or burst (rate inf)."""
    if args.request_rate is not None:
        if math.isinf(args.request_rate):
            return Arrival("burst")
        return Arrival("poisson", rate_per_s=args.request_rate)
    return Arrival("closed", concurrency=args.concurrency or 1)


def workload_from_args(args: argparse.Namespace) -> tuple[Workload, Slo | None]:
    """The workload and optional SLO the flags describe."""
    rng = random.Random(args.seed)
    arrival = arrival_from_args(args)
    kind = args.workload
    try:
        if kind == "fixed":
            if args.num_sessions is not None:
                raise UsageError("--num-sessions applies to --workload agentic; use --num-requests")
            if args.shared_prefix > args.isl:
                raise UsageError(f"--shared-prefix {args.shared_prefix} exceeds --isl {args.isl}")
            wl = Workload.single_turn(
                input_len=LengthDist.fixed(args.isl),
                output_len=LengthDist.fixed(args.osl),
                num_requests=args.num_requests or DEFAULT_NUM_REQUESTS,
                arrival=arrival,
                rng=rng,
                shared_prefix_tokens=args.shared_prefix,
                num_prefixes=args.num_prefixes,
            )
        elif kind == "agentic":
            if args.num_requests is not None:
                raise UsageError("agentic workloads count sessions: use --num-sessions")
            shape = AgenticShape(
                num_turns=LengthDist(
                    "uniform", args.turns, max(1, args.turns // 2), args.turns * 3 // 2
                ),
                system_tokens=args.system_tokens,
                tool_output=LengthDist("lognormal", args.tool_tokens),
                output=LengthDist("lognormal", args.turn_output),
                think_s=args.think_s,
            )
            wl = Workload.agentic(
                shape=shape,
                num_sessions=args.num_sessions or DEFAULT_NUM_SESSIONS,
                arrival=arrival,
                rng=rng,
            )
        else:
            wl = _trace_workload(Path(kind), args)
    except ValueError as exc:
        raise UsageError(f"workload: {exc}") from None
    slo = None
    if args.slo_ttft_ms is not None or args.slo_tpot_ms is not None:
        slo = Slo(ttft_ms=args.slo_ttft_ms, tpot_ms=args.slo_tpot_ms)
    return wl, slo


def _trace_workload(path: Path, args: argparse.Namespace) -> Workload:
    if path.suffix not in (".jsonl", ".csv") and not path.exists():
        raise UsageError(
            f"--workload {str(path)!r}: expected one of {WORKLOAD_KINDS} or a trace file "
            "(moerun or Mooncake JSONL, Azure LLM inference CSV)"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read trace {path}: {exc.strerror}") from None
    lines = text.splitlines()
    try:
        if path.suffix == ".csv":
            wl = parse_azure_csv(lines)
        elif _first_is_mooncake(lines):
            wl = parse_mooncake(lines)
        else:
            wl = parse_trace(lines, concurrency=args.concurrency)
        wl = scale_and_cap(wl, speedup=args.trace_speedup, max_requests=args.num_requests)
    except TraceError as exc:
        raise UsageError(f"trace {path}: {exc}") from None
    if args.request_rate is not None:
        raise UsageError("a trace brings its own arrival times: drop --request-rate")
    if wl.arrival.kind == "trace" and args.concurrency is not None:
        raise UsageError("a timed trace brings its own arrival times: drop --concurrency")
    return wl


def _first_is_mooncake(lines: list[str]) -> bool:
    first = next((line for line in lines if line.strip()), "")
    try:
        return is_mooncake_line(json.loads(first))
    except ValueError:
        return False
