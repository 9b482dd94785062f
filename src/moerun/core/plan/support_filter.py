"""The support gate of the self-hosted search: only combinations a source verifies are ranked
by default; unverified ones with `allow_unverified`; known-unsupported ones never.

Configurations held out are reported twice: an endpoint (a GPU cloud price) none of whose
feasible configurations passes is excluded by the `support` constraint, and the cheapest held
out configurations are listed with their reasons, so a cheaper unverified choice is visible.
"""

from __future__ import annotations

from dataclasses import dataclass

from moerun.core.deploy.support import Support, SupportMatrix, support_for
from moerun.core.market.offers import CloudOffer
from moerun.core.plan.funnel import SUPPORT, Exclusion
from moerun.core.plan.search import Screened

NUM_HELD_OUT_SHOWN = 5


@dataclass(frozen=True, slots=True)
class HeldOut:
    """A feasible configuration the support gate kept out of the ranking."""

    label: str
    support: Support
    usd_per_request_at_capacity: float


def admitted(support: Support, allow_unverified: bool) -> bool:
    """Whether a configuration with this support may be ranked."""
    return support.verified or (allow_unverified and support.status == "unverified")


def screened_label(s: Screened) -> str:
    """e.g. '8x mi300x fp8 TP8 vllm MTP3' (+ ' 1P2D')."""
    d = s.dep
    pd = f" {s.disaggregation[0]}P{s.disaggregation[1]}D" if s.disaggregation else ""
    return (
        f"{d.num_gpus}x {d.gpu.id} {d.weights} {d.parallel.describe()} {d.engine.name} "
        f"MTP{d.mtp.num_draft_tokens}{pd}"
    )


def split_by_support(
    feasible: list[Screened], matrix: SupportMatrix, allow_unverified: bool
) -> tuple[list[Screened], list[HeldOut], dict[int, Support]]:
    """(admitted configurations, the cheapest held-out ones, support by id of each admitted)."""
    allowed: list[Screened] = []
    held: list[HeldOut] = []
    supports: dict[int, Support] = {}
    for s in feasible:
        sup = support_for(matrix, s.dep, s.disaggregation is not None)
        if admitted(sup, allow_unverified):
            allowed.append(s)
            supports[id(s)] = sup
        else:
            held.append(HeldOut(screened_label(s), sup, s.usd_per_request_at_capacity))
    held.sort(key=lambda h: h.usd_per_request_at_capacity)
    seen: set[str] = set()
    shown = []
    for h in held:
        key = h.label.split(" MTP")[0] + h.support.status
        if key not in seen:
            seen.add(key)
            shown.append(h)
    return allowed, shown[:NUM_HELD_OUT_SHOWN], supports


def support_exclusions(
    clouds: list[CloudOffer], feasible: list[Screened], allowed: list[Screened]
) -> list[Exclusion]:
    """Cloud prices whose GPU has feasible configurations but none the gate admits."""
    out = []
    for c in clouds:
        gpu = c.price.gpu
        here = [s for s in feasible if s.dep.gpu.id == gpu]
        if here and not any(s.dep.gpu.id == gpu for s in allowed):
            cheapest = min(here, key=lambda s: s.usd_per_request_at_capacity)
            reason = "no verified configuration"
            out.append(
                Exclusion(
                    SUPPORT,
                    "self-hosted",
                    f"{gpu} at {c.label}",
                    f"{reason} (e.g. {screened_label(cheapest)}); pass --allow-unverified to rank "
                    "unverified ones",
                )
            )
    return out
