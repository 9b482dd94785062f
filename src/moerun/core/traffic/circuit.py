"""How an upstream attempt failed, and a per-backend circuit breaker with an injected clock.

The split follows vLLM production-stack's retry service: transport failures exclude the
backend and reroute at once; 408/429/5xx keep it eligible and back off; 401/403/404 mean the
backend is misconfigured (a wrong API key, base URL or model name: the gateway, not the
client, chose all three), so the backend is marked and excluded and the next one is asked;
any other 4xx is the request's own fault (a bad body, a content-policy refusal) and is
neither retried nor held against the backend. A 5xx is only held against a backend once
another backend served the same request, or when there was no other backend to ask: the same
request failing everywhere is the request's fault (sgl-router 0.3.2 opened every breaker on
five such requests).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

OK, CLIENT_ERROR, THROTTLED, SERVER_ERROR, TRANSPORT, MISCONFIGURED = (
    "ok",
    "client_error",
    "throttled",
    "server_error",
    "transport",
    "misconfigured",
)
CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


def classify(status: int | None) -> str:
    """Outcome class of one attempt: None status means the transport failed or timed out."""
    if status is None:
        return TRANSPORT
    if status < 400:
        return OK
    if status in (408, 429):
        return THROTTLED
    if status >= 500:
        return SERVER_ERROR
    if status in (401, 403, 404):
        return MISCONFIGURED
    return CLIENT_ERROR


def retryable(outcome: str) -> bool:
    """Whether another attempt (on this or another backend) may help."""
    return outcome in (THROTTLED, SERVER_ERROR, TRANSPORT, MISCONFIGURED)


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """Circuit breaker knobs (sgl-router: trip after 5 failures, 30 s timeout)."""

    failure_threshold: int = 5
    cooldown_s: float = 10.0
    success_threshold: int = 1


class CircuitBreaker:
    """closed -> open after failure_threshold consecutive failures -> half-open after cooldown,
    where one probe at a time is let through -> closed after success_threshold successes."""

    def __init__(self, config: BreakerConfig) -> None:
        self.config = config
        self.state = CLOSED
        self.num_failures = 0
        self.num_successes = 0
        self.opened_at_s = 0.0
        self.probe_in_flight = False

    def allows(self, now_s: float) -> bool:
        """Whether a request may go to the backend now (no state change)."""
        if self.state == CLOSED:
            return True
        if self.state == OPEN:
            return now_s - self.opened_at_s >= self.config.cooldown_s
        return not self.probe_in_flight

    def on_attempt(self, now_s: float) -> None:
        """A request is being sent; an open circuit past its cooldown becomes half-open."""
        if self.state == OPEN and now_s - self.opened_at_s >= self.config.cooldown_s:
            self.state = HALF_OPEN
            self.num_successes = 0
        if self.state == HALF_OPEN:
            self.probe_in_flight = True

    def record_success(self) -> None:
        """The backend served a request (any status the backend is not to blame for)."""
        self.num_failures = 0
        if self.state == HALF_OPEN:
            self.probe_in_flight = False
            self.num_successes += 1
            if self.num_successes >= self.config.success_threshold:
                self.state = CLOSED

    def record_failure(self, now_s: float) -> None:
        """The backend failed a request (transport error or a 5xx it is to blame for)."""
        self.num_failures += 1
        if self.state == HALF_OPEN or self.num_failures >= self.config.failure_threshold:
            self.state = OPEN
            self.opened_at_s = now_s
            self.probe_in_flight = False

    def release_probe(self) -> None:
        """A half-open probe ended with no verdict (the client left, a 4xx)."""
        self.probe_in_flight = False


def backoff_s(
    attempt: int,
    rng: random.Random,
    base_s: float = 0.05,
    factor: float = 1.5,
    cap_s: float = 2.0,
    jitter: float = 0.2,
) -> float:
    """Delay before retry number `attempt` (0-based): min(base * factor^k, cap) * (1 +- jitter)."""
    delay = min(base_s * factor**attempt, cap_s)
    return delay * (1.0 + jitter * (2.0 * rng.random() - 1.0))
