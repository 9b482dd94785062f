"""The plan's throughput-latency chart: the front no layout beats, drawn through predictions
whose error was measured, and apart from it the front that counts the never-measured ones."""

from __future__ import annotations

from moerun.core.plan.curves import (
    Pareto,
    ParetoPoint,
    front_of,
    pareto,
    unmeasured_front_note,
)
from tests.fixtures.plan import run_plan


def _p(tpot: float, tok: float, label: str = "x", measured: bool = True) -> ParetoPoint:
    return ParetoPoint(tpot, tok, label, "calibrated" if measured else "extrapolated", measured)


def test_front_keeps_the_points_nothing_beats() -> None:
    a, b, c, d, e = _p(10, 100), _p(12, 90), _p(15, 300), _p(15, 250), _p(20, 300)
    # b is beaten by a (faster and more), d by c (as fast, less), e by c (slower, as much)
    assert front_of([e, d, c, b, a]) == [a, c]
    assert front_of([]) == []


def test_the_front_is_drawn_through_measured_predictions_only() -> None:
    measured = [_p(10, 100, "m1"), _p(20, 400, "m2")]
    wild = _p(12, 900, "32x b200 DP32", measured=False)
    chart = Pareto([*measured, wild], front_of(measured), front_of([*measured, wild]))
    assert chart.unmeasured_front
    note = unmeasured_front_note(chart)
    assert "32x b200 DP32" in note and "900" in note and "400" in note
    same = Pareto(measured, front_of(measured), front_of(measured))
    assert not same.unmeasured_front and unmeasured_front_note(same) == ""


def test_plan_chart_splits_points_by_measured_error() -> None:
    r = run_plan("chat")
    chart = pareto(r)
    band = [bool(s.calibration.error_band_pct) for s in r.search.feasible + r.search.infeasible]
    assert set(band) == {True, False}, "the fixture plan should have both kinds"
    assert chart.front and all(p.error_measured for p in chart.front)
    every = chart.points
    # no shown point beats a front point among the points it is drawn from
    for f, pool in (
        (chart.front, [p for p in every if p.error_measured]),
        (chart.all_front, every),
    ):
        for q in f:
            assert q in every
            assert not any(
                p.tpot_p99_ms <= q.tpot_p99_ms
                and p.output_tok_per_s_per_gpu > q.output_tok_per_s_per_gpu
                for p in pool
            )
    # the front of every point is never below the measured one at the same latency
    best_measured = max(p.output_tok_per_s_per_gpu for p in chart.front)
    assert max(p.output_tok_per_s_per_gpu for p in chart.all_front) >= best_measured
