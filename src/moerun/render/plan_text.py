"""The plan in the terminal: the recommendation first, then the ranked table, then the why."""

from __future__ import annotations

from collections import defaultdict

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from moerun.core.plan.planner import PlanResult
from moerun.core.plan.recommend import Option, api_equivalent_prices, reference_api

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


def _api_equivalent(o: Option, ref: Option | None) -> str:
    if o.kind == "managed" and o.managed is not None:
        m = o.managed.model
        return f"{m.input_usd_per_mtok:g} / {m.output_usd_per_mtok:g}"
    if ref is None:
        return "-"
    i, out = api_equivalent_prices(o, ref)
    return f"{i:.2f} / {out:.2f}"


def _what(o: Option) -> str:
    """The label folded at ' @ ' and ' + ' (never mid-word), with its support status."""
    text = o.label.replace(" + overflow to ", "\n+ overflow to ").replace(" @ ", "\n@ ")
    if o.support is not None and not o.support.verified:
        text += f"\n[{o.support.status}]"
    return escape(text)


def _latency(o: Option) -> tuple[str, str]:
    sh = o.self_hosted
    if sh is not None and o.kind != "managed":
        p = sh.perf
        tpot = [(name, v) for name, v in p.band_shown() if name.endswith("TPOT")]
        err = ""
        if tpot:
            name, v = tpot[0]
            err = f" ±{v:.0f}%" + (" (median)" if name.startswith("median") else "")
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
    console.print(ranked_table(r, max_rows, console.width))
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


# (header, justify, priority): columns with the highest priority number go first when the
# terminal is too narrow; a cell never wraps, long labels fold at their own separators.
COLUMNS = (
    ("#", "right", 0),
    ("kind", "left", 5),
    ("what", "left", 0),
    ("repl.", "right", 6),
    ("$/month", "right", 0),
    ("$/Mtok\nblended", "right", 1),
    ("API-equiv.\n$/Mtok in/out", "right", 2),
    ("p99 ms\nTTFT / TPOT", "right", 3),
    ("numbers from", "left", 4),
)


def ranked_table(r: PlanResult, max_rows: int, width: int) -> Table:
    """The ranked options as a table no wider than `width` (dropping columns as needed)."""
    ref = reference_api(r.options)
    rows: list[tuple[str, ...]] = []
    for i, o in enumerate(r.options[:max_rows]):
        lat, src = _latency(o)
        repl = str(o.self_hosted.cost.peak_replicas) if o.self_hosted else "-"
        rows.append(
            (
                str(i + 1),
                o.kind,
                _what(o),
                repl,
                f"{o.usd_per_month:,.0f}",
                f"{o.usd_per_mtok_blended:.3f}",
                _api_equivalent(o, ref),
                lat,
                src,
            )
        )
    keep = list(range(len(COLUMNS)))
    by_priority = sorted(range(len(COLUMNS)), key=lambda c: -COLUMNS[c][2])
    while True:
        t = _table(r, max_rows, ref, rows, keep)
        if Console(width=10_000).measure(t).maximum <= width or COLUMNS[by_priority[0]][2] == 0:
            return t
        keep.remove(by_priority.pop(0))


def _table(
    r: PlanResult, max_rows: int, ref: Option | None, rows: list[tuple[str, ...]], keep: list[int]
) -> Table:
    shown = min(max_rows, len(r.options))
    caption = None
    if ref is not None and 6 in keep:
        caption = f"API-equiv.: list prices at {ref.label}'s input:output ratio that bill the same"
    t = Table(
        title=f"Ranked options ({shown} of {len(r.options)}; --json for all)",
        caption=caption,
        show_lines=len(rows) > 0,
    )
    for c in keep:
        header, just, _ = COLUMNS[c]
        t.add_column(header, justify=just, no_wrap=True)  # type: ignore[arg-type]
    for row in rows:
        t.add_row(*(row[c] for c in keep))
    return t


def _print_break_even(console: Console, r: PlanResult) -> None:
    if r.break_even_between is None:
        return
    own, api = r.break_even_between
    v = r.break_even_requests_per_day
    if v is None:
        console.print(
            f"\nSelf-hosting ({own.label}) does not beat {api.label} below 1000x this volume."
        )
    else:
        tokens = v * r.stats.tokens_per_request
        side = "above" if v > r.request.volume.requests_per_day else "already, from"
        console.print(
            f"\nBreak-even: self-hosting ({own.label}) beats {api.label} {side} "
            f"{v:,.0f} requests/day ({tokens / 1e9:.2f}B tokens/day)."
        )
    band = break_even_band_text(r)
    if band:
        console.print(band)


def break_even_band_text(r: PlanResult) -> str:
    """How far the break-even moves within the self-hosted side's typical throughput error
    ("" where that error was never measured)."""
    b = r.break_even_band
    if b is None:
        return ""

    def at(v: float | None) -> str:
        return f"from {v:,.0f} requests/day" if v is not None else "not below 1000x"

    return (
        f"Within its typical throughput error (±{b.band_pct:.0f}%): "
        f"{at(b.optimistic_requests_per_day)} if faster, {at(b.pessimistic_requests_per_day)} "
        "if slower."
    )


def _print_exclusions(console: Console, r: PlanResult) -> None:
    if r.unpriced_gpus:
        console.print(
            f"Not searched, no cloud price in the catalog (add one with --prices): "
            f"{', '.join(r.unpriced_gpus)}"
        )
    if r.held_out:
        cheapest = r.held_out[0]
        why = cheapest.support.reasons[0] if cheapest.support.reasons else ""
        console.print(
            f"Not ranked, no source verifies them ({len(r.held_out)} cheapest shown in --json; "
            f"--allow-unverified ranks unverified ones): e.g. {cheapest.label}: "
            f"{cheapest.support.status} - {why}",
            highlight=False,
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
