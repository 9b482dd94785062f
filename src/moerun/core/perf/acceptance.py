"""MTP draft acceptance as measured data: per model and kind of prompt, turned into the
per-token acceptance the step-time model uses.

A chain of k drafts with per-token acceptance a emits 1 + a + ... + a^k tokens per decode step
on average; sources publish that mean ("accept length") at their k, or a directly.
"""

from __future__ import annotations

from dataclasses import dataclass

from moerun.core.deploy.mtp import Mtp

PROMPT_KINDS = ("random", "text")


def accept_length(acceptance: float, draft_tokens: int) -> float:
    """Mean tokens per decode step: 1 + a + ... + a^k (`Mtp.tokens_per_step`)."""
    return Mtp.drafting(draft_tokens, acceptance).tokens_per_step


def per_token_acceptance(length: float, draft_tokens: int) -> float:
    """The a with 1 + a + ... + a^k = `length` (bisection; clamped to [0, 1))."""
    if draft_tokens < 1 or length <= 1.0:
        return 0.0
    if length >= draft_tokens + 1:
        return 0.999
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if accept_length(mid, draft_tokens) < length:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


@dataclass(frozen=True, slots=True)
class AcceptanceRow:
    """One published measurement: per-token acceptances by the draft count they were
    measured at (None: the source gives a per-token rate for any draft count)."""

    id: str
    applies_to: tuple[str, ...]
    prompts: str
    rates_by_draft_tokens: tuple[tuple[int | None, tuple[float, ...]], ...]
    measured_on: str
    source: str
    note: str = ""

    def rates(self, draft_tokens: int) -> tuple[tuple[float, ...], bool]:
        """The acceptances measured nearest `draft_tokens`, and whether at exactly it."""
        best = min(
            self.rates_by_draft_tokens,
            key=lambda kr: 0 if kr[0] is None else abs(kr[0] - draft_tokens),
        )
        return best[1], best[0] is None or best[0] == draft_tokens


@dataclass(frozen=True, slots=True)
class AcceptanceChoice:
    """The acceptance a model gets for a kind of prompt, and the range its rows span."""

    value: float
    low: float
    high: float
    row: AcceptanceRow
    exact_draft_tokens: bool

    def describe(self) -> dict[str, object]:
        """For reports: the value, its range, and where it comes from."""
        return {
            "value": round(self.value, 4),
            "low": round(self.low, 4),
            "high": round(self.high, 4),
            "prompts": self.row.prompts,
            "row": self.row.id,
            "measured_on": self.row.measured_on,
            "source": self.row.source,
            "at_measured_draft_count": self.exact_draft_tokens,
            "note": self.row.note,
        }


def choose_acceptance(
    rows: tuple[AcceptanceRow, ...], model_id: str, prompts: str, draft_tokens: int
) -> AcceptanceChoice | None:
    """The row for `model_id` and `prompts` (its mean at the nearest draft count), with the
    low and high ends of every row that applies to the model; None when none does."""
    assert prompts in PROMPT_KINDS, prompts
    mine = [r for r in rows if model_id in r.applies_to]
    chosen = next((r for r in mine if r.prompts == prompts), None)
    if chosen is None:
        return None
    values, exact = chosen.rates(draft_tokens)
    spread = [v for r in mine for v in r.rates(draft_tokens)[0]]
    return AcceptanceChoice(
        value=sum(values) / len(values),
        low=min(spread),
        high=max(spread),
        row=chosen,
        exact_draft_tokens=exact,
    )
