"""Per-key rate limits (requests and tokens per minute) and budgets (dollars per period).

In-process by default; through Redis when `redis_url` is set, so several gateway replicas
share one count. Windows are fixed calendar minutes. A budgeted request reserves its maximum
cost at admission (a `Hold`) and settles to its real cost when it ends: a request is admitted
while spend plus reservations is under the budget, so a concurrent burst overshoots by at most
one request's maximum cost. Budgets start from the ledger's spend for the current period, so a
restart does not reset them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from moerun.core.traffic.metering import Prices, period_end, period_id
from moerun.serve.gateway.config import KeySpec

REQUESTS, TOKENS, BUDGET = "requests", "tokens", "budget"


@dataclass(frozen=True, slots=True)
class Hold:
    """Dollars reserved against a key's budget at admission, settled when the request ends."""

    period: str  # the budget period it was reserved in, e.g. "month:2026-12"
    reserved_usd: float
    epoch: str = ""  # which seeding of a shared counter holds it (Redis)


def max_cost_usd(limits: Iterable[tuple[Prices, int]], num_prompt_tokens: int) -> float:
    """The most a request can cost on any of its allowed backends, given each one's prices
    and output-token cap: every prompt token uncached, every allowed output token used."""
    return max((p.cost_usd(num_prompt_tokens, 0, cap) for p, cap in limits), default=0.0)


class Limits(Protocol):
    """Admission control for one key."""

    async def admit(
        self, key: KeySpec, now_s: float, max_cost_usd: float = 0.0
    ) -> tuple[str | None, Hold | None]:
        """Count the request and reserve its maximum cost against the budget; the name of
        the exhausted limit if it must be refused, else the reservation (if budgeted)."""

    async def charge(
        self, key: KeySpec, num_tokens: int, cost_usd: float, now_s: float, hold: Hold | None
    ) -> None:
        """Add a finished request's tokens; settle its reservation to the real cost."""

    async def seed_spend(self, key: KeySpec, spend_usd: float, now_s: float) -> None:
        """Start a key's budget from the ledger's spend in its current period."""

    async def close(self) -> None:
        """Release connections."""


class Periods:
    """The current period id per period kind, recomputed only when a period ends."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[str, float]] = {}

    def current(self, period: str, now_s: float) -> str:
        """Id of the period holding now_s, e.g. "month:2026-11"."""
        hit = self._cache.get(period)
        if hit is None or now_s >= hit[1]:
            moment = datetime.fromtimestamp(now_s, UTC)
            hit = (period_id(moment, period), period_end(moment, period).timestamp())
            self._cache[period] = hit
        return hit[0]


class MemoryLimits:
    """Counters in this process."""

    def __init__(self) -> None:
        self._minute: dict[str, tuple[int, int, int]] = {}  # key -> (minute, requests, tokens)
        self._spend: dict[tuple[str, str], float] = {}  # (key, period id) -> dollars
        self.periods = Periods()

    async def admit(
        self, key: KeySpec, now_s: float, max_cost_usd: float = 0.0
    ) -> tuple[str | None, Hold | None]:
        """Count the request and reserve its maximum cost unless a limit is exhausted."""
        minute = int(now_s // 60)
        m, num_requests, num_tokens = self._minute.get(key.name, (minute, 0, 0))
        if m != minute:
            num_requests, num_tokens = 0, 0
        if key.requests_per_minute is not None and num_requests >= key.requests_per_minute:
            return REQUESTS, None
        if key.tokens_per_minute is not None and num_tokens >= key.tokens_per_minute:
            return TOKENS, None
        hold = None
        if key.budget_usd is not None:
            pid = self.periods.current(key.budget_period, now_s)
            spent = self._spend.get((key.name, pid), 0.0)
            if spent >= key.budget_usd:
                return BUDGET, None
            self._spend[(key.name, pid)] = spent + max_cost_usd
            hold = Hold(pid, max_cost_usd)
        self._minute[key.name] = (minute, num_requests + 1, num_tokens)
        return None, hold

    async def charge(
        self, key: KeySpec, num_tokens: int, cost_usd: float, now_s: float, hold: Hold | None
    ) -> None:
        """Add tokens to this minute; settle the reservation to the real cost."""
        minute = int(now_s // 60)
        m, num_requests, tokens = self._minute.get(key.name, (minute, 0, 0))
        if m != minute:
            num_requests, tokens = 0, 0
        self._minute[key.name] = (minute, num_requests, tokens + num_tokens)
        if key.budget_usd is not None:
            pid = hold.period if hold else self.periods.current(key.budget_period, now_s)
            delta = cost_usd - (hold.reserved_usd if hold else 0.0)
            self._spend[(key.name, pid)] = self._spend.get((key.name, pid), 0.0) + delta

    async def seed_spend(self, key: KeySpec, spend_usd: float, now_s: float) -> None:
        """Start a key's budget from the ledger's spend in its current period."""
        pid = self.periods.current(key.budget_period, now_s)
        self._spend[(key.name, pid)] = spend_usd

    async def close(self) -> None:
        """Nothing to release."""
