"""Measured-table interpolation: exact on points, monotone where the data is, labelled outside."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from moerun.catalog.perf.kernels import load_kernel_tables
from moerun.core.deploy.mtp import Mtp
from moerun.core.perf.step_time import StepBatch, StepModel, StepParams
from moerun.core.perf.tables import Curve, GemmGrid, Grid
from tests.conftest import make_deployment


def test_curve_exact_on_points_linear_between_and_beyond() -> None:
    c = Curve((1.0, 2.0, 4.0), (10.0, 20.0, 24.0))
    assert [c(x) for x in (1.0, 2.0, 4.0)] == [10.0, 20.0, 24.0]
    assert c(3.0) == pytest.approx(22.0)  # halfway between 20 and 24
    assert c(6.0) == pytest.approx(28.0)  # last segment's slope (2 per unit)
    assert c.covered(3.0) and not c.covered(6.0)
    xs = np.array([1.0, 3.0, 6.0])
    assert np.allclose(c(xs), [10.0, 22.0, 28.0])
    assert list(c.covered(xs)) == [True, True, False]


def test_grid_exact_on_points_fills_holes_along_rows() -> None:
    g = Grid.from_cells([1.0, 4.0], [10.0, 20.0, 30.0], [[1.0, 2.0, 3.0], [4.0, 6.0, None]])
    assert g is not None
    assert g(1.0, 20.0) == pytest.approx(2.0)
    assert g(4.0, 20.0) == pytest.approx(6.0)
    assert g(4.0, 30.0) == pytest.approx(8.0)  # the hole, along the row's last slope (+2/10)
    assert not g.covered(4.0, 30.0) and g.covered(2.0, 15.0)
    assert g(2.5, 15.0) == pytest.approx((1.5 + 5.0) / 2)  # bilinear
    b, s = np.array([1.0, 2.5]), np.array([20.0, 15.0])
    assert np.allclose(g(b, s), [2.0, 3.25])


def test_grid_fills_holes_along_columns_and_never_below_fewer_or_shorter() -> None:
    # 4k prompts measured at batch 1 and 2 only (3 and 5 units): batch 4 extends that column
    # (+2 per prompt: 9), not its own row, whose measured cells stop at 2k on a flat floor
    g = Grid.from_cells(
        [1.0, 2.0, 4.0],
        [1000.0, 2000.0, 4000.0],
        [[1.0, 1.0, 3.0], [1.0, 1.0, 5.0], [1.0, 1.0, None]],
    )
    assert g is not None
    assert g(4.0, 4000.0) == pytest.approx(9.0)
    assert not g.covered(4.0, 4000.0)
    # a column with one measured cell: the hole stays at least that cell (more sequences
    # never take less time), though its row alone would read 5
    g = Grid.from_cells([1.0, 2.0], [10.0, 20.0, 30.0], [[1.0, 2.0, 10.0], [3.0, 4.0, None]])
    assert g is not None
    assert g(2.0, 30.0) == pytest.approx(10.0)
    # measured cells are exact, even one below its row's first measured cell
    g = Grid.from_cells([1.0, 2.0], [10.0, 20.0, 30.0], [[2.0, 1.5, 3.0], [2.0, 2.5, 3.5]])
    assert g is not None
    assert g(1.0, 20.0) == pytest.approx(1.5)


def test_gemm_grid_bilinear_in_n_and_k() -> None:
    # latency = m * n * k / 1e6 on the grid's corners: bilinear in (n, k) is exact for it
    ms, ns, ks = (1.0, 2.0), (10.0, 20.0), (100.0, 200.0)
    lat = tuple(m * n * k / 1e6 for m in ms for n in ns for k in ks)
    curve = GemmGrid(ms, ns, ks, lat).curve(15.0, 100.0)
    assert curve is not None
    assert curve(1.0) == pytest.approx(1.5e-3) and curve(2.0) == pytest.approx(3.0e-3)
    assert GemmGrid(ms, ns, ks, lat).curve(40.0, 100.0) is None  # outside: no curve


def test_real_tables_monotone_where_the_data_is() -> None:
    tables = load_kernel_tables("h200_sxm", "sglang")
    assert tables is not None
    curve = next(iter(tables.all_reduce.values()))
    ys = [curve(x) for x in curve.xs]
    between = [curve((a + b) / 2) for a, b in zip(curve.xs, curve.xs[1:], strict=False)]
    for lo, mid, hi in zip(ys, between, ys[1:], strict=False):
        assert min(lo, hi) - 1e-15 <= mid <= max(lo, hi) + 1e-15


def test_step_from_tables_reports_coverage_and_falls_back_when_missing() -> None:
    dep = make_deployment("glm-5-fp8", engine="sglang")
    tables = load_kernel_tables("h200_sxm", "sglang")
    model = StepModel(dep, replace(StepParams(), kernels=tables))
    batch = StepBatch(decode_seqs=16, decode_attended=16 * 2048, decode_context=16 * 3000)
    assert model.kernel_coverage(batch) > 0.5
    assert model.step_time_s(batch) != StepModel(dep, StepParams()).step_time_s(batch)
    # no tables (the roofline, labelled by zero coverage); and AMD has no tables at all
    assert StepModel(dep, StepParams()).kernel_coverage(batch) == 0.0
    assert load_kernel_tables("mi300x", "sglang") is None
    # far beyond the measured batch sizes the tables extrapolate and stop counting as measured
    huge = StepBatch(decode_seqs=50_000, decode_attended=5e4 * 2048, decode_context=5e4 * 3000)
    assert model.kernel_coverage(huge) < model.kernel_coverage(batch)


def test_per_sequence_overhead_is_paid_per_dp_rank() -> None:
    p = StepParams(step_overhead_s=0.0, seq_overhead_s=1e-4)
    sol = StepParams.speed_of_light()
    batch = StepBatch(decode_seqs=256, decode_attended=256 * 100, decode_context=256 * 100)
    from moerun.core.deploy.parallel import Parallel

    dep = make_deployment("glm-5.1-fp8", parallel=Parallel(tp=1, dp=8, ep=8))
    with_over = StepModel(dep, replace(sol, seq_overhead_s=1e-4)).step_time_s(batch)
    without = StepModel(dep, sol).step_time_s(batch)
    # 256 sequences over 8 ranks: 32 per rank, 1e-4 s each, in parallel across ranks
    assert with_over - without == pytest.approx(32 * 1e-4)
    # the same with the step priced from the tables
    tables = load_kernel_tables("h200_sxm", "vllm")
    measured = StepModel(dep, replace(p, kernels=tables)).step_time_s(batch)
    bare = StepModel(dep, replace(p, seq_overhead_s=0.0, kernels=tables)).step_time_s(batch)
    assert measured - bare == pytest.approx(32 * 1e-4)


@pytest.mark.parametrize("engine", ["sglang", "vllm"])
@pytest.mark.parametrize("mtp", [0, 2])
def test_scalar_fast_path_equals_the_array_path(engine: str, mtp: int) -> None:
    from moerun.core.perf.step_time import step_time_parts

    dep = make_deployment("glm-5-fp8", engine=engine, mtp=Mtp.drafting(mtp, 0.7))
    p = replace(StepParams(kernel_scale=1.3), kernels=load_kernel_tables("h200_sxm", engine))
    model = StepModel(dep, p)
    for b in (
        StepBatch(decode_seqs=7, decode_attended=7 * 2048, decode_context=7 * 9000),
        StepBatch(prefill_tokens=3000, prefill_seqs=2, prefill_logits=1),
        StepBatch(prefill_tokens=500, prefill_seqs=1, decode_seqs=300, decode_context=3e5),
        StepBatch(),
    ):
        want = step_time_parts(model.shape, p, b, max)[0]
        assert model.step_time_s(b) == pytest.approx(float(want), rel=1e-12)
