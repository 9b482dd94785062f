"""The plan in the terminal: the recommendation first, then the ranked table, then the why."""

from __future__ import annotations

from collections import defaultdict

from rich.console import Console
from rich.table import Table

from moerun.core.plan.planner import PlanResult
from moerun.core.plan.recommend import Option

MAX_ROWS = 12


def headline(r: PlanResult) -> str:
    """One line: what was asked."""
    req = r.request
    pol = req.policy
    rules = []
    if pol.allowed_jurisdictions:
        rules.append("in " + "/".join(pol.allowed_jurisdictions))
    rules += list(pol.required_certifications)
    if pol.zero_retention:
        rules.append("zero retention")
    if pol.self_hosted_only:
        rules.append("self-hosted only")
    if req.budget_usd_per_month:
        rules.append(f"budget ${req.budget_usd_per_month:,.0f}/month")
    tokens = req.volume.requests_per_day * r.stats.tokens_per_request
    return (
        f"{req.model.name}, {req.preset.name}: {req.volume.requests_per_day:,.0f} requests/day "
        f"({tokens / 1e9:.2f}B tokens, peak {req.volume.profile.peak_to_average:.1f}x average); "
        f"p99 TTFT <= {req.slo.ttft_ms:,.0f} ms, p99 TPOT <= {req.slo.tpot_ms:,.1f} ms; "
        + ("policy: " + ", ".join(rules) if rules else "no policy")
    )


def _mtok(o: Option) -> str:
    sh = o.self_hosted
    if o.kind == "self-hosted" and sh is not None:
        c = sh.cost
        blended = o.usd_per_mtok_blended
        return f"{c.usd_per_mtok_input:.2f} / {c.usd_per_mtok_output:.2f} / {blended:.3f}"
    if o.kind == "managed" and o.managed is not None:
        m = o.managed.model
        return f"{m.input_usd_per_mtok} / {m.output_usd_per_mtok} / {o.usd_per_mtok_blended:.3f}"
    return f"- / - / {o.usd_per_mtok_blended:.3f}"


def _latency(o: Option) -> tuple[str, str]:
    sh = o.self_hosted
    if sh is not None and o.kind != "managed":
        p = sh.perf
        band = p.error_band_pct.get("tpot_p99_ms")
        err = f" ±{band:.0f}%" if band else ""
        return (
            f"{p.ttft_p99_ms or 0:,.0f} / {p.tpot_p99_ms or 0:.1f}",
            f"{p.source}, {p.calibration_status}{err}",
        )
    if o.managed is not None:
        t, s = o.managed.best_ttft_s, o.managed.best_output_tok_per_s
        pub = f"{t * 1e3:,.0f} / {1e3 / s:.1f}" if t and s else "-"
        return (pub + " (median)", "published, p99 unverified")
    return ("-", "-")


def print_plan(console: Console, r: PlanResult, max_rows: int = MAX_ROWS) -> None:
    """The human view."""
    console.print(f"[bold]moerun plan[/]: {headline(r)}")
    if not r.options:
        _print_nothing(console, r)
        return
    top = r.options[0]
    console.print(
        f"\n[bold green]Recommendation:[/] {top.kind} - {top.label}\n"
        f"  ${top.usd_per_month:,.0f}/month, ${top.usd_per_mtok_blended:.3f}/Mtok blended"
        + (f", {top.self_hosted.cost.peak_replicas} replica(s) at peak" if top.self_hosted else "")
    )
    for note in top.notes:
        console.print(f"  - {note}", highlight=False)
    _print_break_even(console, r)
    _print_acceptance(console, r)
    t = Table(
        title=f"Ranked options ({min(max_rows, len(r.options))} of {len(r.options)}; "
        "--json for all)",
        show_lines=False,
    )
    for col, just in (
        ("#", "right"),
        ("kind", "left"),
        ("what", "left"),
        ("repl.", "right"),
        ("$/month", "right"),
        ("$/Mtok in / out / blended", "right"),
        ("p99 TTFT / TPOT ms", "right"),
        ("numbers from", "left"),
    ):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for i, o in enumerate(r.options[:max_rows]):
        lat, src = _latency(o)
        repl = str(o.self_hosted.cost.peak_replicas) if o.self_hosted else "-"
        t.add_row(str(i + 1), o.kind, o.label, repl, f"{o.usd_per_month:,.0f}", _mtok(o), lat, src)
    console.print(t)
    _print_exclusions(console, r)
    if r.overridden:
        console.print("[bold]Prices overridden by --prices:[/]")
        for line in r.overridden:
            console.print(f"  - {line}", highlight=False)


def _print_acceptance(console: Console, r: PlanResult) -> None:
    """How the first self-hosted MTP option moves with the acceptance the catalog measured."""
    pts = r.acceptance_sensitivity
    if not pts:
        return
    parts = []
    for p in pts:
        cost = f"${p.usd_per_request * 1e3:.3f}/1k req" if p.usd_per_request else "misses the SLO"
        parts.append(
            f"{p.label} {p.acceptance:.2f}: {p.output_tok_per_s_per_gpu:,.0f} tok/s/GPU, {cost}"
        )
    console.print(
        "\nMTP acceptance (measured range, random prompts to real text), first self-hosted "
        "MTP option per replica: " + "; ".join(parts),
        highlight=False,
    )


def _print_break_even(console: Console, r: PlanResult) -> None:
    if r.break_even_between is None:
        return
    own, api = r.break_even_between
    v = r.break_even_requests_per_day
    if v is None:
        console.print(
            f"\nSelf-hosting ({own.label}) does not beat {api.label} below 1000x this volume."
        )
        return
    tokens = v * r.stats.tokens_per_request
    side = "above" if v > r.request.volume.requests_per_day else "already, from"
    console.print(
        f"\nBreak-even: self-hosting ({own.label}) beats {api.label} {side} "
        f"{v:,.0f} requests/day ({tokens / 1e9:.2f}B tokens/day)."
    )


def _print_exclusions(console: Console, r: PlanResult) -> None:
    if r.unpriced_gpus:
        console.print(
            f"Not searched, no cloud price in the catalog (add one with --prices): "
            f"{', '.join(r.unpriced_gpus)}"
        )
    if not r.exclusions:
        return
    by: dict[str, list[str]] = defaultdict(list)
    for e in r.exclusions:
        by[e.constraint].append(f"{e.subject}: {e.reason}")
    console.print(f"[bold]Excluded[/] ({len(r.exclusions)} of {r.funnel.total} endpoints):")
    for constraint, items in by.items():
        more = f" (+{len(items) - 2} more)" if len(items) > 2 else ""
        console.print(
            f"  {constraint}: {len(items)} - " + "; ".join(items[:2]) + more, highlight=False
        )


def _print_nothing(console: Console, r: PlanResult) -> None:
    console.print("\n[bold red]No option satisfies every constraint.[/]")
    if r.funnel.emptied_by:
        console.print(f"The list was emptied by: [bold]{r.funnel.emptied_by}[/]")
        for name, left in r.funnel.stages:
            console.print(f"  after {name}: {left} endpoint(s) left")
    if r.closest:
        console.print(f"Closest: {r.closest}", highlight=False)
    _print_exclusions(console, r)
