"""Demand: what a team sends (a workload preset), how much (volume) and when (daily profile).

`WorkloadStats` condenses a sampled workload into the per-request means the capacity model
and the cost model need. A prompt's reusable prefix is every segment but the newest: the
shared system prompt (hot in any cache) and, for an agentic turn, the whole history, which the
previous turn's prompt and output already put in the cache.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace

import numpy as np

from moerun.core.load.metrics import Slo
from moerun.core.load.workload import AgenticShape, Arrival, LengthDist, Workload
from moerun.core.market.cost import HOURS_PER_DAY

PRESET_KINDS = ("single-turn", "agentic")
SECONDS_PER_DAY = 86_400


@dataclass(frozen=True, slots=True)
class DailyProfile:
    """Relative request rate in each hour of the day: 24 values with mean 1."""

    hourly: tuple[float, ...]

    @classmethod
    def flat(cls) -> DailyProfile:
        """The same rate all day (peak-to-average 1)."""
        return cls((1.0,) * HOURS_PER_DAY)

    @classmethod
    def from_values(cls, values: list[float] | tuple[float, ...]) -> DailyProfile:
        """Normalise 24 non-negative hourly weights to mean 1; ValueError when unusable."""
        if len(values) != HOURS_PER_DAY:
            raise ValueError(f"an hourly profile has 24 values, not {len(values)}")
        if any(not math.isfinite(v) or v < 0 for v in values) or not any(values):
            raise ValueError("hourly profile values must be finite, >= 0 and not all zero")
        mean = sum(values) / HOURS_PER_DAY
        return cls(tuple(v / mean for v in values))

    @property
    def peak_to_average(self) -> float:
        """The busiest hour's rate over the daily mean."""
        return max(self.hourly)

    def with_peak_to_average(self, factor: float) -> DailyProfile:
        """This shape stretched (or flattened) so the busiest hour is `factor` x the mean.

        Hours are moved away from the mean by a common factor k (clipped at zero, then
        renormalised); k is found by bisection. A flat shape, or a target no stretch reaches,
        becomes one busy hour with the rest sharing the remainder.
        """
        if factor < 1 or factor > HOURS_PER_DAY:
            raise ValueError(f"a peak-to-average factor is between 1 and 24, not {factor}")

        def stretched(k: float) -> DailyProfile:
            return DailyProfile.from_values([max(0.0, 1 + k * (v - 1)) for v in self.hourly])

        lo, hi = 0.0, 1.0
        while stretched(hi).peak_to_average < factor and hi < 1e6:
            hi *= 2
        if self.peak_to_average <= 1 + 1e-9 or stretched(hi).peak_to_average < factor - 1e-6:
            rest = (HOURS_PER_DAY - factor) / (HOURS_PER_DAY - 1)
            busiest = max(range(HOURS_PER_DAY), key=lambda h: self.hourly[h])
            return DailyProfile.from_values(
                [factor if h == busiest else rest for h in range(HOURS_PER_DAY)]
            )
        for _ in range(60):
            mid = (lo + hi) / 2
            if stretched(mid).peak_to_average < factor:
                lo = mid
            else:
                hi = mid
        return stretched(hi)


@dataclass(frozen=True, slots=True)
class Volume:
    """Requests per day and their shape over the day."""

    requests_per_day: float
    profile: DailyProfile

    @property
    def mean_req_per_s(self) -> float:
        """The daily average request rate."""
        return self.requests_per_day / SECONDS_PER_DAY

    @property
    def peak_req_per_s(self) -> float:
        """The busiest hour's request rate."""
        return self.mean_req_per_s * self.profile.peak_to_average

    def hourly_req_per_s(self) -> tuple[float, ...]:
        """The request rate in each hour of the day."""
        return tuple(self.mean_req_per_s * v for v in self.profile.hourly)

    def scaled(self, requests_per_day: float) -> Volume:
        """The same shape at another daily volume."""
        return replace(self, requests_per_day=requests_per_day)


@dataclass(frozen=True, slots=True)
class WorkloadPreset:
    """A named workload: request shape, context and output needs, default SLO and volume."""

    name: str
    description: str
    kind: str
    output: LengthDist
    max_context: int
    max_output_tokens: int
    slo: Slo
    requests_per_day: float
    profile: DailyProfile
    input: LengthDist | None = None
    shared_prefix_tokens: int = 0
    num_prefixes: int = 1
    agentic: AgenticShape | None = None
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in PRESET_KINDS:
            raise ValueError(f"workload kind must be one of {PRESET_KINDS}, not {self.kind!r}")
        if (self.kind == "agentic") != (self.agentic is not None):
            raise ValueError("an agentic workload needs its session shape (and only it does)")
        if self.kind == "single-turn" and self.input is None:
            raise ValueError("a single-turn workload needs an input length distribution")

    @property
    def mean_turns(self) -> float:
        """Requests per session (1 for single-turn)."""
        if self.agentic is None:
            return 1.0
        turns = self.agentic.num_turns
        if turns.kind == "uniform" and turns.low is not None and turns.high is not None:
            return (turns.low + turns.high) / 2
        return float(max(1, turns.mean))

    def workload(self, num_requests: int, arrival: Arrival, rng: random.Random) -> Workload:
        """About `num_requests` requests of this shape (whole sessions when agentic)."""
        if self.agentic is not None:
            num_sessions = max(1, round(num_requests / self.mean_turns))
            return Workload.agentic(
                shape=self.agentic, num_sessions=num_sessions, arrival=arrival, rng=rng
            )
        assert self.input is not None
        return Workload.single_turn(
            input_len=self.input,
            output_len=self.output,
            num_requests=num_requests,
            arrival=arrival,
            rng=rng,
            shared_prefix_tokens=self.shared_prefix_tokens,
            num_prefixes=self.num_prefixes,
            name=self.name,
        )


@dataclass(frozen=True, slots=True)
class WorkloadStats:
    """Per-request means of a workload, as the capacity and cost models use them."""

    num_requests: int
    mean_input_tokens: float
    mean_output_tokens: float
    mean_cached_tokens: float  # reusable prefix (shared system prompt, session history)
    p99_new_tokens: float
    # output-weighted mean context while decoding, and its attended part (DSA caps it)
    mean_decode_context: float
    mean_decode_attended: float
    # per new prompt token: mean position, and mean attended positions
    mean_prefill_position: float
    mean_prefill_attended: float
    # KV token-seconds an idle session holds per request (its context through the think time)
    idle_token_s_per_request: float
    max_input_tokens: int
    max_output_tokens: int

    @property
    def mean_new_tokens(self) -> float:
        """Prompt tokens a request must compute when its reusable prefix is cached."""
        return max(1.0, self.mean_input_tokens - self.mean_cached_tokens)

    @property
    def tokens_per_request(self) -> float:
        """Input plus output tokens per request."""
        return self.mean_input_tokens + self.mean_output_tokens


def workload_stats(workload: Workload, attend_cap: int | None = None) -> WorkloadStats:
    """The per-request means of `workload`; `attend_cap` is the DSA top-k (None: dense)."""
    cap = attend_cap if attend_cap is not None else 1 << 62
    inputs, outputs, cached, idle = [], [], [], []
    dec_ctx = dec_att = pre_pos = pre_att = 0.0
    for s, k in workload.requests():
        segs = s.prompt_segments(k)
        n_in = sum(n for _, n in segs)
        n_new = segs[-1][1] if segs else 0
        n_cached = n_in - n_new
        n_out = s.turns[k].output_tokens
        inputs.append(n_in)
        outputs.append(n_out)
        cached.append(n_cached)
        ctx = n_in + n_out / 2
        dec_ctx += n_out * ctx
        dec_att += n_out * min(ctx, cap)
        pre_pos += n_new * (n_cached + (n_new + 1) / 2)
        pre_att += _sum_min(n_cached + 1, n_in, cap)
        think = s.turns[k + 1].think_s if k + 1 < len(s.turns) else 0.0
        idle.append((n_in + n_out) * think)
    n_out_total = max(1.0, float(sum(outputs)))
    new = np.array(inputs, dtype=float) - np.array(cached, dtype=float)
    n_new_total = max(1.0, float(new.sum()))
    return WorkloadStats(
        num_requests=len(inputs),
        mean_input_tokens=float(np.mean(inputs)),
        mean_output_tokens=float(np.mean(outputs)),
        mean_cached_tokens=float(np.mean(cached)),
        p99_new_tokens=float(np.percentile(new, 99)),
        mean_decode_context=dec_ctx / n_out_total,
        mean_decode_attended=dec_att / n_out_total,
        mean_prefill_position=pre_pos / n_new_total,
        mean_prefill_attended=pre_att / n_new_total,
        idle_token_s_per_request=float(np.mean(idle)),
        max_input_tokens=int(max(inputs)),
        max_output_tokens=int(max(outputs)),
    )


def _sum_min(first: int, last: int, cap: int) -> float:
    """Sum over positions p in [first, last] of min(p, cap)."""
    if last < first:
        return 0.0
    below_hi = min(last, cap)
    total = 0.0
    if below_hi >= first:
        total += (first + below_hi) * (below_hi - first + 1) / 2
    above_lo = max(first, cap + 1)
    if last >= above_lo:
        total += cap * (last - above_lo + 1)
    return total
