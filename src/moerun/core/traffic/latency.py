"""Observed latency of one backend: recent samples, quantiles recomputed at most every so often."""

from __future__ import annotations

from collections import deque


class LatencyWindow:
    """Recent samples of one latency (TTFT) with timestamps; samples older than the horizon
    are ignored. Quantiles are cached for refresh_s, so routing reads them at no cost."""

    def __init__(self, horizon_s: float = 60.0, max_samples: int = 512, refresh_s: float = 0.5):
        self.horizon_s = horizon_s
        self.refresh_s = refresh_s
        self._samples: deque[tuple[float, float]] = deque(maxlen=max_samples)
        self._computed_at_s: float | None = None
        self._cached: tuple[float | None, float | None] = (None, None)

    def add(self, value_s: float, now_s: float) -> None:
        """Record one sample taken at now_s."""
        self._samples.append((now_s, value_s))

    def quantiles(self, now_s: float) -> tuple[float | None, float | None]:
        """(p50, p99) of the samples within the horizon; None when there are none."""
        if self._computed_at_s is None or now_s - self._computed_at_s >= self.refresh_s:
            cutoff = now_s - self.horizon_s
            recent = sorted(v for t, v in self._samples if t >= cutoff)
            if recent:
                n = len(recent)
                self._cached = (recent[min(n - 1, n // 2)], recent[min(n - 1, int(0.99 * n))])
            else:
                self._cached = (None, None)
            self._computed_at_s = now_s
        return self._cached
