"""What one request used and cost, and which budget period a moment falls in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

BUDGET_PERIODS = ("day", "week", "month")


@dataclass(frozen=True, slots=True)
class Prices:
    """Token prices of one backend (USD per million tokens)."""

    input_usd_per_mtok: float = 0.0
    cached_input_usd_per_mtok: float = 0.0
    output_usd_per_mtok: float = 0.0

    def cost_usd(
        self, num_input_tokens: int, num_cached_tokens: int, num_output_tokens: int
    ) -> float:
        """Cost of one request; cached input tokens are a subset of input tokens."""
        cached = min(num_cached_tokens, num_input_tokens)
        return (
            (num_input_tokens - cached) * self.input_usd_per_mtok
            + cached * self.cached_input_usd_per_mtok
            + num_output_tokens * self.output_usd_per_mtok
        ) / 1e6


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """One finished request as the ledger keeps it (no prompt contents)."""

    request_id: str
    created_at_s: float  # UTC epoch seconds, when the request finished
    key_name: str
    backend: str
    model: str
    endpoint: str
    stream: bool
    status: str  # ok | error | upstream_error | client_closed
    http_status: int
    num_input_tokens: int
    num_cached_tokens: int
    num_output_tokens: int
    cost_usd: float
    ttft_ms: float | None
    duration_ms: float


def period_start(moment: datetime, period: str) -> datetime:
    """Start (UTC) of the calendar day, ISO week (Monday) or calendar month holding moment."""
    assert period in BUDGET_PERIODS, period
    day = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def period_end(moment: datetime, period: str) -> datetime:
    """Start (UTC) of the period after the one holding moment."""
    start = period_start(moment, period)
    if period == "day":
        return start + timedelta(days=1)
    if period == "week":
        return start + timedelta(days=7)
    if start.month == 12:
        return start.replace(year=start.year + 1, month=1)
    return start.replace(month=start.month + 1)


def period_id(moment: datetime, period: str) -> str:
    """A stable name for the period holding moment, e.g. "month:2026-11"."""
    start = period_start(moment, period)
    if period == "month":
        return f"month:{start:%Y-%m}"
    return f"{period}:{start:%Y-%m-%d}"


def estimate_tokens(num_chars: int) -> int:
    """Rough token count of text for routing and for metering an interrupted stream."""
    # ~4 characters per token for English text with BPE tokenizers (OpenAI's rule of thumb).
    return (num_chars + 3) // 4
