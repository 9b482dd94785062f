"""Fault injection for the emulator: errors, latency spikes, stalls, dropped connections.

Each request draws its faults once, from one seeded `random.Random`, so a run with the same
seed and the same request order injects the same faults.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Faults:
    """Per-request probabilities and sizes (emulated seconds)."""

    error_rate: float = 0.0  # answer HTTP 500 at once
    latency_spike_rate: float = 0.0  # hold the request `latency_spike_s` before it queues
    latency_spike_s: float = 2.0
    stall_rate: float = 0.0  # pause the stream `stall_s` halfway through the output
    stall_s: float = 10.0
    drop_rate: float = 0.0  # close the connection halfway through the output
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("error_rate", "latency_spike_rate", "stall_rate", "drop_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if self.latency_spike_s < 0 or self.stall_s < 0:
            raise ValueError("fault durations must not be negative")

    @property
    def any(self) -> bool:
        """Whether any fault can happen."""
        return any((self.error_rate, self.latency_spike_rate, self.stall_rate, self.drop_rate))


@dataclass(frozen=True, slots=True)
class RequestFaults:
    """What happens to one request."""

    error: bool = False
    spike_s: float = 0.0
    stall_s: float = 0.0
    drop: bool = False


NO_FAULTS = RequestFaults()


class FaultInjector:
    """Draws each request's faults."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self._rng = random.Random(faults.seed)

    def draw(self) -> RequestFaults:
        """The faults of the next request."""
        f = self.faults
        if not f.any:
            return NO_FAULTS
        r = self._rng.random
        return RequestFaults(
            error=r() < f.error_rate,
            spike_s=f.latency_spike_s if r() < f.latency_spike_rate else 0.0,
            stall_s=f.stall_s if r() < f.stall_rate else 0.0,
            drop=r() < f.drop_rate,
        )
