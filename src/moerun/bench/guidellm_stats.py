"""GuideLLM 0.8's distribution summaries, computed as GuideLLM computes them.

`DistributionSummary.from_values` (guidellm/schemas/base/statistics.py, 0.8.1): values with
weights (default 1) become a probability mass function (equal values merged, zero weights
dropped); a percentile q is the smallest value whose cumulative probability reaches q
(`searchsorted(cdf, q, side="left")`), so it is always an observed value, not an
interpolation as moerun's own percentiles are; the median is p50; `count` is the sum of the
weights, rounded; `total_sum` is mean x count. A sample with no positive weight is all zeros.

Only the statistics GuideLLM's report keeps in the fields moerun writes are computed here:
mean, median, count, total_sum and the percentiles p001 (0.1 %) to p999 (99.9 %).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# guidellm.schemas.base.statistics.PERCENTILE_PROBABILITIES
PERCENTILE_PROBABILITIES = {
    "p001": 0.001,
    "p01": 0.01,
    "p05": 0.05,
    "p10": 0.1,
    "p25": 0.25,
    "p50": 0.5,
    "p75": 0.75,
    "p90": 0.9,
    "p95": 0.95,
    "p99": 0.99,
    "p999": 0.999,
}


def distribution_summary(
    values: Sequence[float], weights: Sequence[float] | None = None
) -> dict[str, object]:
    """GuideLLM's summary (mean, median, count, total_sum, percentiles) of a weighted sample."""
    v = np.asarray(values, dtype=float)
    w = np.ones_like(v) if weights is None else np.asarray(weights, dtype=float)
    assert v.shape == w.shape
    count = round(float(w.sum()))
    unique, inverse = np.unique(v, return_inverse=True)
    mass = np.zeros_like(unique)
    np.add.at(mass, inverse, w)
    keep = mass > 0
    unique, mass = unique[keep], mass[keep]
    if unique.size == 0:  # no sample, or only zero weights (one-token answers' ITL)
        zeros = dict.fromkeys(PERCENTILE_PROBABILITIES, 0.0)
        return {"mean": 0.0, "median": 0.0, "count": count, "total_sum": 0.0, "percentiles": zeros}
    if mass.sum() <= 1e-6:  # GuideLLM's epsilon: weights too small, every value counts once
        mass = np.ones_like(unique)
    prob = mass / mass.sum()
    cdf = np.cumsum(prob)
    pct = {
        name: float(unique[min(int(np.searchsorted(cdf, q, side="left")), unique.size - 1)])
        for name, q in PERCENTILE_PROBABILITIES.items()
    }
    mean = float((unique * prob).sum())
    return {
        "mean": mean,
        "median": pct["p50"],
        "count": count,
        "total_sum": mean * count,
        "percentiles": pct,
    }
