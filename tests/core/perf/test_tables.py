"""Measured-table interpolation: exact on points, monotone where the data is, labelled outside."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from moerun.catalog.perf.kernels import load_kernel_tables
from moerun.core.deploy.mtp import Mtp
from moerun.core.perf.step_time import StepBatch, StepModel, StepParams
from moerun.core.perf.tables import Curve, GemmGrid, Grid
from tests.conftest import make_deployment, raw_kernel_file


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


def test_decode_holes_past_a_row_follow_the_nearest_rows_shape() -> None:
    rows, cols = [1.0, 4.0, 16.0], [1000.0, 2000.0, 8000.0]
    # batch 16 measured to 2k only; batch 4 (nearest in log batch) grows 10% from 2k to 8k,
    # batch 1 grows 50%: the hole takes batch 4's growth, 3 x 1.1, where the straight
    # extension of its own row would read 3 + 1 x 6 = 9
    cells: list[list[float | None]] = [[1.0, 1.2, 1.8], [1.5, 2.0, 2.2], [2.0, 3.0, None]]
    shaped = Grid.from_cells(rows, cols, cells, shape_beyond=True)
    straight = Grid.from_cells(rows, cols, cells)
    assert shaped is not None and straight is not None
    assert shaped(16.0, 8000.0) == pytest.approx(3.3)
    assert straight(16.0, 8000.0) == pytest.approx(9.0)
    assert not shaped.covered(16.0, 8000.0)
    # batches 2 and 8 are equally near 4 in log batch: the smaller one's shape (x2); and a
    # shaped hole is never below the cell before it in its row (3 x 0.5 -> 3)
    cells = [[1.0, 2.0, 4.0], [1.0, 2.0, None], [1.0, 1.5, 1.6]]
    g = Grid.from_cells([2.0, 4.0, 8.0], cols, cells, shape_beyond=True)
    assert g is not None and g(4.0, 8000.0) == pytest.approx(4.0)
    cells = [[1.0, 2.0, 1.0], [1.0, 3.0, None], [1.0, 1.5, 2.0]]
    g = Grid.from_cells([2.0, 4.0, 8.0], cols, cells, shape_beyond=True)
    assert g is not None and g(4.0, 8000.0) == pytest.approx(3.0)


def test_the_catalog_shapes_decode_module_tables_only() -> None:
    # B200 SGLang, GLM-5 DSA decode module, 64 heads, fp8 KV: 128 sequences measured to a
    # 2049 context (0.171 ms); the rows measured to 8193 grow 4-9% past 2049 (the attended
    # set stops at DSA's top-k of 2048, only the indexer grows), so 128 x 8193 reads
    # 0.17-0.19 ms, not the 0.33 ms that extending the 1k-2k slope gave
    tables = load_kernel_tables("b200_sxm", "sglang")
    assert tables is not None
    grid = next(
        g
        for k, g in tables.attention.items()
        if (k.op, k.phase, k.architecture, k.gemm_dtype, k.kv_dtype, k.num_heads)
        == ("module", "decode", "GlmMoeDsaForCausalLM", "fp8_block", "fp8", 64)
    )
    assert grid(128.0, 2049.0) == pytest.approx(0.171e-3, rel=0.01)
    assert 0.170e-3 <= grid(128.0, 8193.0) <= 0.190e-3
    # prefill tables keep the straight extension: rebuilt from the file both ways, the
    # loaded grid is the straight one wherever the two differ
    raw = raw_kernel_file("b200_sxm")
    a = next(
        a
        for a in raw["attention"]
        if (a["op"], a["phase"], a["architecture"], a["gemm_dtype"], a["kv_dtype"])
        == ("module", "prefill", "GlmMoeDsaForCausalLM", "fp8_block", "fp8")
        and a["num_heads"] == 64
    )
    ns = len(a["seq"])
    cells = [
        [None if v is None else v * 1e-3 for v in a["latency_ms"][i * ns : (i + 1) * ns]]
        for i in range(len(a["batch"]))
    ]
    rows, seqs = [float(b) for b in a["batch"]], [float(x) for x in a["seq"]]
    straight = Grid.from_cells(rows, seqs, cells)
    shaped = Grid.from_cells(rows, seqs, cells, shape_beyond=True)
    loaded = next(
        g
        for k, g in tables.attention.items()
        if (k.op, k.phase, k.architecture, k.gemm_dtype, k.kv_dtype, k.num_heads)
        == ("module", "prefill", "GlmMoeDsaForCausalLM", "fp8_block", "fp8", 64)
    )
    assert straight is not None and shaped is not None
    differ = [(b, x) for b in rows for x in seqs if straight(b, x) != pytest.approx(shaped(b, x))]
    assert differ
    for b, x in differ:
        assert loaded(b, x) == pytest.approx(straight(b, x))


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
