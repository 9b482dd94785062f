"""The notes next to each option: quality, calibration, verification, schedule, caveats."""

from __future__ import annotations

from moerun.core.market.offers import ManagedOffer
from moerun.core.plan.plan_request import PlanCatalog, PlanRequest
from moerun.core.plan.recommend import FOUR_BIT, SelfHosted


def self_hosted_notes(sh: SelfHosted, catalog: PlanCatalog, request: PlanRequest) -> list[str]:
    """What a reader must know to trust a self-hosted option."""
    dep, perf, cost = sh.screened.dep, sh.perf, sh.cost
    notes = []
    if dep.weights in FOUR_BIT:
        notes.append(f"quality ({dep.weights}): {catalog.weight_notes.get(dep.weights, 'unknown')}")
    band = ", ".join(f"{name} ±{v:.0f}%" for name, v in perf.band_shown())
    # a prediction without a measured band says so rather than looking as sure as one with
    cal = perf.calibration_label() + (
        f" (typical error {band})" if band else " (its error was never measured)"
    )
    if perf.source == "simulated":
        warm = "" if perf.warmed_up else "; run shorter than one session, p99s optimistic"
        load = perf.simulated_req_per_s or 0.0
        notes.append(
            f"simulated at the peak-hour load ({load:.2f} req/s per replica): p99 TTFT "
            f"{perf.ttft_p99_ms or 0:.0f} ms, p99 TPOT {perf.tpot_p99_ms or 0:.1f} ms; {cal}{warm}"
        )
    else:
        notes.append(f"analytic estimate, not simulated; {cal}")
    lo, hi = min(cost.schedule), max(cost.schedule)
    billing = sh.cloud.billing_increment_s
    if sh.cloud.scales_down and lo < hi:
        notes.append(
            f"scale-down schedule: {lo} to {hi} replica(s) over the day, "
            f"{cost.replica_hours_per_day:.0f} replica-hours/day instead of {hi * 24} "
            f"(the cloud bills per {billing} s)"
        )
    elif not sh.cloud.scales_down:
        pricing = sh.cloud.price.pricing
        why = (
            f"{pricing} pricing is paid whether used or not"
            if pricing == "reserved"
            else "its billing increment is not in the catalog"
            if billing is None
            else f"it bills in {billing} s increments"
        )
        notes.append(f"always on at {hi} replica(s): {why}")
    if dep.num_nodes > 1:
        notes.append(f"spans {dep.num_nodes} nodes: needs the cloud's inter-node network")
    if sh.screened.disaggregation:
        notes.append("disaggregated prefill/decode: KV crosses the scale-out network per request")
    p = sh.cloud.price
    notes.append(f"price ${p.usd_per_gpu_hour:g}/GPU-hour [{', '.join(p.source)}] as of {p.as_of}")
    if request.policy.required_certifications:
        notes.append("certifications: from your --prices entry (the catalog holds none for clouds)")
    return notes


def managed_notes(offer: ManagedOffer, request: PlanRequest) -> list[str]:
    """What a reader must know to trust a managed option."""
    m = offer.model
    notes = [
        "p99 unverified: providers publish medians at best; verify with `moerun gateway` "
        "routing to the provider, then `moerun bench` against the gateway at the peak rate "
        "with this workload",
    ]
    ttft, speed = offer.best_ttft_s, offer.best_output_tok_per_s
    if ttft is not None or speed is not None:
        parts = []
        if ttft is not None:
            parts.append(f"median TTFT {ttft:.2f} s")
        if speed is not None:
            parts.append(f"{speed:.0f} tok/s per request")
        notes.append("published: " + ", ".join(parts) + " (on the publisher's workload)")
    else:
        notes.append("no published speed")
    if m.cached_input_usd_per_mtok is None:
        notes.append("no cached-input discount: every prompt token billed at the input price")
    if m.max_output_tokens is None:
        notes.append("output cap not published")
    if m.precision in ("fp4",):
        notes.append("serves 4-bit (FP4) weights: accuracy may differ from the reference")
    if m.rate_limits:
        notes.append(f"rate limits: {m.rate_limits}")
    notes.append(
        f"prices ${m.input_usd_per_mtok}/{m.cached_input_usd_per_mtok}/{m.output_usd_per_mtok} "
        f"per Mtok in/cached/out [{', '.join(m.source)}] as of {m.as_of}"
    )
    if offer.provider.retention != "zero":
        notes.append(f"retention: {offer.provider.retention}")
    return notes
