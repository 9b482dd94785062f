"""Which facts a plan's answer rests on, and which of them are too old to trust unchecked.

Pure: the day to measure age from comes in as an argument (the CLI passes today's date), so
the same plan and the same day give the same warnings.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from moerun.core.plan.planner import PlanResult

MAX_AGE_DAYS = 90


@dataclass(frozen=True, slots=True)
class DatedFact:
    """One catalog fact an answer used: what kind, about what, the day it speaks for."""

    kind: str  # "GPU price" | "API price" | "published performance" | "provider policy"
    subject: str
    as_of_iso: str | None
    source: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StaleFact:
    """A used fact older than the limit, or with no date at all (age None)."""

    fact: DatedFact
    age_days: int | None

    @property
    def message(self) -> str:
        """One line: what, how old, where it came from."""
        f = self.fact
        cited = f" [{', '.join(f.source)}]" if f.source else ""
        if self.age_days is None:
            return f"{f.kind} of {f.subject} has no date{cited}: check it before relying on it"
        return f"{f.kind} of {f.subject} is from {f.as_of_iso}, {self.age_days} days old{cited}"


def used_facts(result: PlanResult) -> list[DatedFact]:
    """The prices, published measurements and policy facts behind the ranked options."""
    facts: list[DatedFact] = []
    policy = result.request.policy
    asks_policy = bool(
        policy.allowed_jurisdictions or policy.required_certifications or policy.zero_retention
    )
    for option in result.options:
        if option.self_hosted is not None:
            cloud = option.self_hosted.cloud
            p = cloud.price
            subject = f"{p.gpu} at {cloud.label}"
            facts.append(DatedFact("GPU price", subject, p.as_of_iso, p.source))
        if option.managed is not None:
            provider, model = option.managed.provider, option.managed.model
            label = option.managed.label
            facts.append(DatedFact("API price", label, model.as_of_iso, model.source))
            for perf in model.perf:
                what = f"{label} ({perf.measured_by})"
                facts.append(DatedFact("published performance", what, perf.as_of_iso, perf.source))
            if asks_policy:
                facts.append(
                    DatedFact("provider policy", provider.id, provider.as_of_iso, provider.source)
                )
    return list(dict.fromkeys(facts))


def stale_facts(
    facts: Iterable[DatedFact], today: dt.date, max_age_days: int = MAX_AGE_DAYS
) -> list[StaleFact]:
    """The facts older than `max_age_days` on `today`, and those with no date, oldest first."""
    out: list[StaleFact] = []
    for f in facts:
        day = _parse(f.as_of_iso)
        if day is None:
            out.append(StaleFact(f, None))
            continue
        age = (today - day).days
        if age > max_age_days:
            out.append(StaleFact(f, age))
    return sorted(out, key=lambda s: -(s.age_days if s.age_days is not None else 10**6))


def summary_lines(stale: list[StaleFact], max_age_days: int = MAX_AGE_DAYS) -> list[str]:
    """One line per kind of fact: how many are stale, the oldest, a few of them by name."""
    lines = []
    kinds = dict.fromkeys(s.fact.kind for s in stale)
    for kind in kinds:
        group = [s for s in stale if s.fact.kind == kind]
        undated = [s for s in group if s.age_days is None]
        dated = [s for s in group if s.age_days is not None]
        names = ", ".join(s.fact.subject for s in group[:3])
        more = f" and {len(group) - 3} more" if len(group) > 3 else ""
        parts = []
        if dated:
            oldest = dated[0]
            parts.append(
                f"{len(dated)} older than {max_age_days} days (oldest {oldest.fact.as_of_iso}, "
                f"{oldest.age_days} days)"
            )
        if undated:
            parts.append(f"{len(undated)} undated")
        lines.append(f"{kind}: {'; '.join(parts)}: {names}{more}; re-check before you commit")
    return lines


def _parse(text: str | None) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None
