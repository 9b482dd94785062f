"""Measured kernel latencies and how to read them between and beyond their points.

A `Curve` is a latency over one size, a `Grid` over two (batch x sequence), a `GemmGrid` over
m x n x k. All are piecewise linear: exact on the measured points, monotone wherever the
points are, and extended beyond the last point along the last segment's slope. `covered()`
says whether a query lies inside the measured range (what counts as "from measurements").
Every method takes a float or a numpy array, so the simulator (one step at a time) and
calibration or capacity (many steps at once) read the same numbers.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def _lerp1(xs: tuple[float, ...], ys: tuple[float, ...], x: float) -> float:
    """Piecewise-linear y(x) through the points, extended along the end segments."""
    n = len(xs)
    if n == 1:
        return ys[0]
    i = bisect_right(xs, x) - 1  # the simulator's hot path: no min/max calls
    if i < 0:
        i = 0
    elif i > n - 2:
        i = n - 2
    x0, y0 = xs[i], ys[i]
    return y0 + (ys[i + 1] - y0) * (x - x0) / (xs[i + 1] - x0)


def _shaped(
    batches: list[float], kept: list[list[float | None]], i: int, last: int, j: int
) -> float | None:
    """Row i's cell at column j past its last measured column `last`: that cell times the
    growth from `last` to j of the nearest row (in log batch) measured at both."""
    refs = [k for k, r in enumerate(kept) if k != i and r[last] is not None and r[j] is not None]
    if not refs:
        return None
    k = min(refs, key=lambda k: (abs(math.log(batches[k] / batches[i])), batches[k]))
    here, there, now = kept[i][last], kept[k][j], kept[k][last]
    assert here is not None and there is not None and now is not None
    return here * there / now


def _lerp_np(xs: np.ndarray, ys: np.ndarray, x: np.ndarray) -> np.ndarray:
    if xs.size == 1:
        return np.full_like(x, ys[0], dtype=float)
    i = np.clip(np.searchsorted(xs, x, side="right") - 1, 0, xs.size - 2)
    x0, x1 = xs[i], xs[i + 1]
    out: np.ndarray = ys[i] + (ys[i + 1] - ys[i]) * (x - x0) / (x1 - x0)
    return out


@dataclass(frozen=True, slots=True, eq=False)
class Curve:
    """Seconds over one size (tokens, bytes): measured points, linear between and beyond."""

    xs: tuple[float, ...]
    ys: tuple[float, ...]
    # False: derived from tables of another shape or layout (scaled, interpolated), so no
    # size of it counts as measured
    measured: bool = True
    _xa: np.ndarray = field(init=False, repr=False)
    _ya: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        assert self.xs and len(self.xs) == len(self.ys), "a curve needs matching points"
        assert all(a < b for a, b in zip(self.xs, self.xs[1:], strict=False)), "xs ascend"
        object.__setattr__(self, "_xa", np.asarray(self.xs, dtype=float))
        object.__setattr__(self, "_ya", np.asarray(self.ys, dtype=float))

    def __call__(self, x: Any) -> Any:
        """The latency at `x` (seconds, never below zero)."""
        if isinstance(x, np.ndarray):
            return np.maximum(_lerp_np(self._xa, self._ya, x), 0.0)
        return max(_lerp1(self.xs, self.ys, float(x)), 0.0)

    def at(self, x: float) -> float:
        """The latency at one size (the scalar fast path of `__call__`)."""
        y = _lerp1(self.xs, self.ys, x)
        return y if y > 0.0 else 0.0

    def covered(self, x: Any) -> Any:
        """Whether `x` lies within the measured sizes (never, for a derived curve)."""
        if isinstance(x, np.ndarray):
            return (x >= self.xs[0]) & (x <= self.xs[-1]) & self.measured
        return self.measured and self.xs[0] <= x <= self.xs[-1]

    def scaled(self, factor: float) -> Curve:
        """The same curve times `factor` (for example, once per layer)."""
        return Curve(self.xs, tuple(y * factor for y in self.ys), self.measured)


def add_curves(curves: list[tuple[Curve, float]]) -> Curve:
    """sum(weight * curve) on the union of their sizes (covered where all of them are)."""
    xs = tuple(sorted({x for c, _ in curves for x in c.xs}))
    lo = max(c.xs[0] for c, _ in curves)
    hi = min(c.xs[-1] for c, _ in curves)
    xs = tuple(x for x in xs if lo <= x <= hi) or xs
    return Curve(xs, tuple(sum(w * c(x) for c, w in curves) for x in xs))


@dataclass(frozen=True, slots=True, eq=False)
class Grid:
    """Seconds over (batch, sequence): a full grid, holes filled from the measured cells.

    The tables leave cells unmeasured (long contexts at large batches); `from_cells` fills
    them along rows and columns (see there), and `measured` remembers which cells were real.
    """

    rows: tuple[float, ...]  # batch sizes
    cols: tuple[float, ...]  # sequence lengths
    values: tuple[tuple[float, ...], ...]
    measured: tuple[tuple[bool, ...], ...]
    _ra: np.ndarray = field(init=False, repr=False)
    _ca: np.ndarray = field(init=False, repr=False)
    _va: np.ndarray = field(init=False, repr=False)
    _ma: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_ra", np.asarray(self.rows, dtype=float))
        object.__setattr__(self, "_ca", np.asarray(self.cols, dtype=float))
        object.__setattr__(self, "_va", np.asarray(self.values, dtype=float))
        object.__setattr__(self, "_ma", np.asarray(self.measured, dtype=bool))

    @classmethod
    def from_cells(
        cls,
        rows: list[float],
        cols: list[float],
        cells: list[list[float | None]],
        shape_beyond: bool = False,
    ) -> Grid | None:
        """A grid from rows of cells (None: unmeasured); None when no row has two cells.

        Measured cells are kept exactly. A hole gets the larger of two readings of the cells
        measured around it, each linear through them and extended along the last segment:
        along its row (longer sequences) and, where its column has two measured cells, along
        its column (more sequences). A hole is then never below the cell before it in its row
        or its column: more sequences, or longer ones, never take less time. (Reading holes
        along rows alone let a batch of four 4k prompts cost a third of one, where the 4k cells
        were measured only at batch 1 and 2.)

        With `shape_beyond` (the loader sets it for decode module tables), a hole past its
        row's last measured cell follows the shape of the nearest row (in log batch) measured
        at both: the row's last cell times that row's growth between the two sequence
        lengths. Decode time grows with the context in a way straight lines do not follow
        (DSA's attention stops growing at its top-k, its indexer does not). Prefill tables and
        the bare MLA decode kernel keep the straight extension, which fits their own hidden
        cells better; `docs/performance-model.md` has both rules' errors on the catalog's cells.
        """
        known = [[v if v is not None and v > 0 else None for v in row] for row in cells]
        keep = [i for i, row in enumerate(known) if sum(v is not None for v in row) >= 2]
        if not keep:
            return None
        batches = [rows[i] for i in keep]
        kept = [known[i] for i in keep]
        measured = [[v is not None for v in row] for row in kept]
        values: list[list[float]] = []
        for i, row in enumerate(kept):
            pts = [(c, v) for c, v in zip(cols, row, strict=True) if v is not None]
            xs, ys = tuple(c for c, _ in pts), tuple(v for _, v in pts)
            last = max(j for j, v in enumerate(row) if v is not None)
            out = []
            for j, c in enumerate(cols):
                cell = row[j]
                if cell is not None:
                    out.append(cell)
                    continue
                if shape_beyond and j > last:
                    shaped = _shaped(batches, kept, i, last, j)
                    if shaped is not None:
                        out.append(shaped)
                        continue
                est = max(_lerp1(xs, ys, c), ys[0])
                col = [(batches[k], x) for k in range(len(kept)) if (x := kept[k][j]) is not None]
                if len(col) >= 2:
                    bs, vs = tuple(b for b, _ in col), tuple(x for _, x in col)
                    est = max(est, _lerp1(bs, vs, batches[i]))
                out.append(est)
            values.append(out)
        for i in range(len(kept)):  # holes: never below the cell with fewer or shorter sequences
            for j in range(len(cols)):
                if kept[i][j] is None:
                    below = values[i - 1][j] if i > 0 else 0.0
                    before = values[i][j - 1] if j > 0 else 0.0
                    values[i][j] = max(values[i][j], below, before)
        return cls(
            tuple(batches),
            tuple(cols),
            tuple(tuple(r) for r in values),
            tuple(tuple(m) for m in measured),
        )

    def __call__(self, b: Any, s: Any) -> Any:
        """Bilinear latency at batch `b`, sequence `s` (batch below the first row clamps)."""
        if isinstance(b, np.ndarray) or isinstance(s, np.ndarray):
            bb = np.maximum(np.asarray(b, dtype=float), self._ra[0])
            ss = np.asarray(s, dtype=float) + np.zeros_like(bb)
            bb = bb + np.zeros_like(ss)
            if self._ra.size == 1:
                return np.maximum(self._row_np(0, ss), 0.0)
            i = np.clip(np.searchsorted(self._ra, bb, side="right") - 1, 0, self._ra.size - 2)
            lo = self._row_np_idx(i, ss)
            hi = self._row_np_idx(i + 1, ss)
            w = (bb - self._ra[i]) / (self._ra[i + 1] - self._ra[i])
            return np.maximum(lo + (hi - lo) * w, 0.0)
        bf, sf = max(float(b), self.rows[0]), float(s)
        if len(self.rows) == 1:
            return max(_lerp1(self.cols, self.values[0], sf), 0.0)
        r = min(max(bisect_right(self.rows, bf) - 1, 0), len(self.rows) - 2)
        lo_f = _lerp1(self.cols, self.values[r], sf)
        hi_f = _lerp1(self.cols, self.values[r + 1], sf)
        w_f = (bf - self.rows[r]) / (self.rows[r + 1] - self.rows[r])
        return max(lo_f + (hi_f - lo_f) * w_f, 0.0)

    def at(self, b: float, s: float) -> float:
        """The latency at one (batch, sequence) (the scalar fast path of `__call__`)."""
        rows = self.rows
        bf = b if b > rows[0] else rows[0]
        if len(rows) == 1:
            return max(_lerp1(self.cols, self.values[0], s), 0.0)
        r = bisect_right(rows, bf) - 1
        r = 0 if r < 0 else (len(rows) - 2 if r > len(rows) - 2 else r)
        lo = _lerp1(self.cols, self.values[r], s)
        hi = _lerp1(self.cols, self.values[r + 1], s)
        y = lo + (hi - lo) * (bf - rows[r]) / (rows[r + 1] - rows[r])
        return y if y > 0.0 else 0.0

    def scaled(self, factor: float) -> Grid:
        """The same grid times `factor` (for example, once per layer)."""
        values = tuple(tuple(v * factor for v in row) for row in self.values)
        return Grid(self.rows, self.cols, values, self.measured)

    def _row_np(self, i: int, s: np.ndarray) -> np.ndarray:
        return _lerp_np(self._ca, self._va[i], s)

    def _row_np_idx(self, i: np.ndarray, s: np.ndarray) -> np.ndarray:
        if self._ca.size == 1:
            return np.asarray(self._va[i, 0], dtype=float)
        j = np.clip(np.searchsorted(self._ca, s, side="right") - 1, 0, self._ca.size - 2)
        c0, c1 = self._ca[j], self._ca[j + 1]
        v0, v1 = self._va[i, j], self._va[i, j + 1]
        out: np.ndarray = v0 + (v1 - v0) * (s - c0) / (c1 - c0)
        return out

    def covered(self, b: Any, s: Any) -> Any:
        """Whether (b, s) lies inside the measured cells (all four corners measured)."""
        if isinstance(b, np.ndarray) or isinstance(s, np.ndarray):
            bb = np.asarray(b, dtype=float) + np.zeros_like(np.asarray(s, dtype=float))
            ss = np.asarray(s, dtype=float) + np.zeros_like(bb)
            inside = (
                (bb >= self._ra[0] - 1e-9)
                & (bb <= self._ra[-1])
                & (ss >= self._ca[0])
                & (ss <= self._ca[-1])
            )
            i = np.clip(np.searchsorted(self._ra, bb, side="right") - 1, 0, self._ra.size - 1)
            i1 = np.minimum(i + 1, self._ra.size - 1)
            j = np.clip(np.searchsorted(self._ca, ss, side="right") - 1, 0, self._ca.size - 1)
            j1 = np.minimum(j + 1, self._ca.size - 1)
            m = self._ma
            both = m[i, j] & m[i1, j] & m[i, j1] & m[i1, j1]
            return inside & both
        bf, sf = float(b), float(s)
        if not (self.rows[0] - 1e-9 <= bf <= self.rows[-1] and self.cols[0] <= sf <= self.cols[-1]):
            return False
        r = min(max(bisect_right(self.rows, bf) - 1, 0), len(self.rows) - 1)
        c = min(max(bisect_right(self.cols, sf) - 1, 0), len(self.cols) - 1)
        r1, c1 = min(r + 1, len(self.rows) - 1), min(c + 1, len(self.cols) - 1)
        cells = self.measured
        return cells[r][c] and cells[r1][c] and cells[r][c1] and cells[r1][c1]


@dataclass(frozen=True, slots=True, eq=False)
class GemmGrid:
    """Seconds of one GEMM (M x K times K x N) over m, n, k, for one dtype."""

    m: tuple[float, ...]
    n: tuple[float, ...]
    k: tuple[float, ...]
    latency_s: tuple[float | None, ...]  # m-major, then n, then k

    def _cell(self, i: int, j: int, c: int) -> float | None:
        return self.latency_s[(i * len(self.n) + j) * len(self.k) + c]

    def curve(self, n: float, k: float) -> Curve | None:
        """Latency over m for one (n, k) (bilinear in n and k); None outside the table or
        where a surrounding cell is unmeasured."""
        if not (self.n[0] <= n <= self.n[-1] and self.k[0] <= k <= self.k[-1]):
            return None
        j = min(max(bisect_right(self.n, n) - 1, 0), len(self.n) - 2)
        kk = min(max(bisect_right(self.k, k) - 1, 0), len(self.k) - 2)
        wn = (n - self.n[j]) / (self.n[j + 1] - self.n[j])
        wk = (k - self.k[kk]) / (self.k[kk + 1] - self.k[kk])
        xs, ys = [], []
        for i, m in enumerate(self.m):
            c = [self._cell(i, j + a, kk + b) for a in (0, 1) for b in (0, 1)]
            if any(v is None for v in c):
                continue
            v00, v01, v10, v11 = (float(v) for v in c if v is not None)
            lo = v00 + (v01 - v00) * wk
            hi = v10 + (v11 - v10) * wk
            xs.append(m)
            ys.append(lo + (hi - lo) * wn)
        if len(xs) < 2:
            return None
        return Curve(tuple(xs), tuple(ys))


@dataclass(frozen=True, slots=True)
class MoeKey:
    """The shape and layout of one fused-MoE table."""

    dtype: str
    hidden: int
    inter: int
    topk: int
    experts: int
    moe_tp: int
    moe_ep: int


@dataclass(frozen=True, slots=True)
class DeepepMoeKey:
    """One table of the expert GEMMs SGLang runs behind DeepEP (DeepGEMM), one rank's experts
    timed over tokens per rank: `phase` "prefill" is DeepEP's normal mode (a step in which any
    rank prefills), "decode" its low-latency mode."""

    phase: str
    dtype: str
    hidden: int
    inter: int
    topk: int
    experts: int
    ep: int


@dataclass(frozen=True, slots=True)
class AttentionKey:
    """Which attention table: a whole module (projections included) or the kernel alone."""

    op: str  # "module" or "kernel"
    phase: str  # "prefill" or "decode"
    architecture: str  # "" for kernel tables
    gemm_dtype: str
    kv_dtype: str
    num_heads: int  # per GPU


@dataclass(frozen=True, slots=True, eq=False)
class KernelTables:
    """The measured tables of one GPU and engine, with where they came from."""

    gpu: str
    engine: str
    source: str
    gemm: dict[str, GemmGrid]
    moe: dict[MoeKey, Curve]
    attention: dict[AttentionKey, Grid]
    all_reduce: dict[int, Curve]  # GPUs -> latency over message bytes
    # DeepEP dispatch + combine in one 8-GPU node, (hidden, topk, experts) -> over tokens/rank:
    # low-latency mode (decode steps) and normal mode (steps with a prefill)
    alltoall: dict[tuple[int, int, int], Curve]
    alltoall_normal: dict[tuple[int, int, int], Curve] = field(default_factory=dict)
    moe_deepep: dict[DeepepMoeKey, Curve] = field(default_factory=dict)  # over tokens per rank


def collective_constants(
    all_reduce: Curve, num_gpus: int, link_bw_bytes_per_s: float
) -> tuple[float, float]:
    """(efficiency, latency in seconds) of the roofline's collective model, read off a measured
    all-reduce: the ring's bus bandwidth at the largest message, 2 (n - 1) / n x bytes / time,
    over the link bandwidth the roofline divides by, and the time of the smallest message."""
    ring = 2 * (num_gpus - 1) / num_gpus
    bus_bw = ring * all_reduce.xs[-1] / all_reduce.ys[-1]
    return bus_bw / link_bw_bytes_per_s, all_reduce.ys[0]
