"""Fit the step-time model's efficiencies to measured serving runs, and say how well it fits.

Each measured point (a closed-loop benchmark run: fixed lengths, fixed concurrency) is
simulated once, recording every step's batch and the steps on which each request arrived,
produced its first token and finished. In a closed loop the scheduler's choices do not depend
on how long steps take, so re-pricing the recorded steps with other parameters gives that
run's timeline exactly: request times are cumulative sums of step times. The fit minimises
the squared log error of median TTFT, p99 TTFT, median TPOT and output throughput over all
points (scipy's bounded least squares); cross-validation refits without each group of points
(for example one input length) and predicts the group it left out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import least_squares

from moerun.core.perf.step_time import StepBatch, StepModel, StepParams, step_time, with_values
from moerun.core.sim.simulator import StepTrace

FIT_METRICS = (
    "ttft_p50_ms",
    "ttft_p99_ms",
    "tpot_p50_ms",
    "output_tok_per_s",
    "ttft_mean_ms",
    "tpot_mean_ms",
)
# the means stand in for the medians where a source publishes only means (InferenceX)
METRIC_WEIGHTS = {
    "ttft_p50_ms": 1.0,
    "ttft_p99_ms": 0.5,
    "tpot_p50_ms": 1.5,
    "output_tok_per_s": 1.5,
    "ttft_mean_ms": 1.0,
    "tpot_mean_ms": 1.5,
}
# name -> (lower, upper) bounds of each fitted parameter
FIT_BOUNDS = {
    "gemm_efficiency": (0.01, 1.0),
    "mem_efficiency": (0.05, 1.0),
    "attn_efficiency": (0.01, 1.0),
    "step_overhead_s": (0.0, 0.2),
    # CPU work per running sequence per step and DP rank (scheduling, sampling,
    # detokenizing): tens of microseconds in vLLM and SGLang; a larger value explains runs of
    # tens of sequences and fails at thousands (plans price large batches), so it is bounded
    "seq_overhead_s": (0.0, 5e-5),
    # a request's latency outside the steps (HTTP, tokenizer, IPC, detokenizer): SGLang's
    # cookbook measures 130-280 ms TTFT at concurrency 1 for prompts a step prefills in tens of
    # ms; a second bounds it far above any serving stack's
    "request_overhead_s": (0.0, 1.0),
    # end-to-end kernel time against the tables' isolated timings (other engine version,
    # CUDA graphs, overlap); the bounds are far from any plausible value
    "kernel_scale": (0.2, 5.0),
}
_FIELDS = (
    "prefill_tokens",
    "prefill_seqs",
    "prefill_attended",
    "prefill_context",
    "prefill_logits",
    "decode_seqs",
    "decode_attended",
    "decode_context",
)


@dataclass(frozen=True)
class Point:
    """One measured run, simulated and recorded, ready to be re-priced."""

    id: str
    group: str
    model: StepModel
    features: dict[str, np.ndarray]
    worked: np.ndarray
    start: np.ndarray
    first: np.ndarray
    end: np.ndarray
    output_tokens: np.ndarray
    measured: dict[str, float]

    @classmethod
    def from_trace(
        cls,
        id: str,
        group: str,
        model: StepModel,
        trace: StepTrace,
        output_tokens: dict[int, int],
        measured: dict[str, float],
        warmup_requests: int = 0,
    ) -> Point:
        """Arrays from a recorded simulation of a single replica; the first
        `warmup_requests` requests sent (a client's warm-up) are left out of the metrics."""
        feats = {f: np.array([getattr(b, f) for b in trace.batches], dtype=float) for f in _FIELDS}
        rids = [r for r in sorted(trace.first_step) if r >= warmup_requests]
        return cls(
            id=id,
            group=group,
            model=model,
            features=feats,
            worked=np.array(trace.worked, dtype=bool),
            start=np.array([trace.start_step[r] for r in rids]),
            first=np.array([trace.first_step[r] for r in rids]),
            end=np.array([trace.end_step[r] for r in rids]),
            output_tokens=np.array([output_tokens[r] for r in rids], dtype=float),
            measured=measured,
        )


def predict(point: Point, params: StepParams) -> dict[str, float]:
    """The point's metrics with its recorded steps priced by `params`."""
    f = point.features
    durations = step_time(point.model.shape, params, StepBatch(**f), np.maximum)
    durations = np.where(point.worked, durations, 0.0)
    clock = np.concatenate(([0.0], np.cumsum(durations)))
    t0, t1, t2 = clock[point.start], clock[point.first], clock[point.end]
    # the client sees every token request_overhead_s after the engine made it
    t1, t2 = t1 + params.request_overhead_s, t2 + params.request_overhead_s
    ttft = (t1 - t0) * 1e3
    multi = point.output_tokens > 1
    tpot = (t2 - t1)[multi] / (point.output_tokens[multi] - 1) * 1e3
    span = float(t2.max() - t0.min())
    return {
        "ttft_p50_ms": float(np.median(ttft)),
        "ttft_p99_ms": float(np.percentile(ttft, 99)),
        "ttft_mean_ms": float(np.mean(ttft)),
        "tpot_p50_ms": float(np.median(tpot)) if tpot.size else 0.0,
        "tpot_p99_ms": float(np.percentile(tpot, 99)) if tpot.size else 0.0,
        "tpot_mean_ms": float(np.mean(tpot)) if tpot.size else 0.0,
        "output_tok_per_s": float(point.output_tokens.sum() / span) if span > 0 else 0.0,
        "req_per_s": float(point.output_tokens.size / span) if span > 0 else 0.0,
    }


def _residuals(points: Sequence[Point], params: StepParams) -> np.ndarray:
    out = []
    for p in points:
        pred = predict(p, params)
        for m in FIT_METRICS:
            meas = p.measured.get(m)
            if meas is None or meas <= 0:
                continue
            out.append(METRIC_WEIGHTS[m] * np.log(max(pred[m], 1e-9) / meas))
    return np.array(out)


def fit_loss(points: Sequence[Point], params: StepParams) -> float:
    """The fit's objective: the sum of squared weighted log errors."""
    return float(np.sum(_residuals(points, params) ** 2))


def fit(
    points: Sequence[Point],
    base: StepParams | None = None,
    held: Mapping[str, float] | None = None,
) -> StepParams:
    """The parameters that best reproduce `points` (the fitted fields of FIT_BOUNDS), with
    the fields in `held` fixed at those values instead of fitted."""
    held = held or {}
    start = with_values(base or StepParams(), dict(held))
    # only the parameters the points depend on (with kernel tables, the efficiencies price
    # only what the tables miss; a parameter nothing depends on would wander to a bound)
    names = [n for n in FIT_BOUNDS if n not in held and _matters(points, start, n)]
    if not names:
        return start
    lo = np.array([FIT_BOUNDS[n][0] for n in names])
    hi = np.array([FIT_BOUNDS[n][1] for n in names])
    scale = np.where(hi > 0, hi, 1.0)
    x0 = np.clip(np.array([getattr(start, n) for n in names]), lo, hi) / scale

    def fun(x: np.ndarray) -> np.ndarray:
        values = {n: float(v) for n, v in zip(names, x * scale, strict=True)}
        return _residuals(points, with_values(start, values))

    sol = least_squares(fun, x0, bounds=(lo / scale, hi / scale), method="trf", x_scale="jac")
    values = {n: float(v) for n, v in zip(names, sol.x * scale, strict=True)}
    return with_values(start, values)


def _matters(points: Sequence[Point], start: StepParams, name: str) -> bool:
    lo, hi = FIT_BOUNDS[name]
    base = _residuals(points, start)
    value = getattr(start, name)
    moved = with_values(
        start, {name: value * 1.2 + 0.01 * (hi - lo) if value < hi else value * 0.8}
    )
    return bool(np.max(np.abs(_residuals(points, moved) - base), initial=0.0) > 1e-9)


@dataclass(frozen=True)
class PointError:
    """Measured against predicted, for one point and one metric."""

    point_id: str
    metric: str
    measured: float
    predicted: float

    @property
    def abs_pct_error(self) -> float:
        """|predicted - measured| / measured, in percent."""
        return abs(self.predicted - self.measured) / self.measured * 100


def point_errors(
    points: Sequence[Point], predictions: dict[str, dict[str, float]]
) -> list[PointError]:
    """Every point's error on every measured metric."""
    out = []
    for p in points:
        for metric, meas in p.measured.items():
            if meas and metric in predictions[p.id]:
                out.append(PointError(p.id, metric, meas, predictions[p.id][metric]))
    return out


def median_ape(errors: Sequence[PointError]) -> dict[str, float]:
    """Median absolute percentage error per metric."""
    by: dict[str, list[float]] = {}
    for e in errors:
        by.setdefault(e.metric, []).append(e.abs_pct_error)
    return {m: float(np.median(v)) for m, v in sorted(by.items())}


def cross_validate(
    points: Sequence[Point],
    base: StepParams | None = None,
    held: Mapping[str, float] | None = None,
) -> dict[str, dict[str, float]]:
    """Leave-one-group-out predictions: each group predicted by a fit on the others (the
    fields in `held` fixed, as `fit` takes them)."""
    groups = sorted({p.group for p in points})
    out: dict[str, dict[str, float]] = {}
    for g in groups:
        train = [p for p in points if p.group != g]
        left_out = [p for p in points if p.group == g]
        params = fit(train, base, held) if train else (base or StepParams())
        for p in left_out:
            out[p.id] = predict(p, params)
    return out


CALIBRATION_STATUSES = ("calibrated", "extrapolated", "uncalibrated")


@dataclass(frozen=True)
class CalibrationProfile:
    """Fitted parameters for one GPU and engine, with how well they fit."""

    id: str
    version: int
    gpu: str
    engine: str
    engine_version: str
    params: StepParams
    mtp_acceptance: float
    fitted_on: tuple[str, ...]
    in_sample_mape: dict[str, float]
    cross_validated_mape: dict[str, float]
    created: str
    source: str
    # The engine's KV capacity relative to moerun's memory-fit estimate, fitted with the
    # efficiencies (the fit's engine reserve is a stated assumption; engines profile theirs)
    kv_capacity_factor: float = 1.0
    # the configuration its runs used (None: not recorded): KV-cache dtype and prompts
    kv_dtype: str | None = None
    prompts: str | None = None
    # parameters fixed instead of fitted (`moerun calibrate --hold`), with their values
    held: dict[str, float] = field(default_factory=dict)
    # the model architectures (HF model_type) its runs served; empty: not recorded
    model_types: tuple[str, ...] = ()
    # the kinds of layout its runs used (`Deployment.layout_kind`); empty: not recorded
    layouts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Calibration:
    """The parameters a prediction uses, and how far to trust it."""

    status: str  # calibrated / extrapolated / uncalibrated
    params: StepParams
    profile: CalibrationProfile | None
    note: str
    # an extrapolated prediction's band: the measured error of such extrapolations (median
    # absolute % per metric) and what it was measured on; empty where none was measured
    extrapolation_band_pct: dict[str, float] = field(default_factory=dict)
    extrapolation_basis: str = ""
    # a prediction for a model architecture the profile was not fitted on: the measured error
    # of such predictions (median absolute % per metric; empty where none was measured) and
    # what it rests on; "" when the model is one the profile's runs served (or not known)
    model_band_pct: dict[str, float] = field(default_factory=dict)
    model_basis: str = ""
    # a profile that could not be cross-validated (its runs share one input length): its
    # measured error on its own GPU's runs of its architectures that it was not fitted on
    held_out_band_pct: dict[str, float] = field(default_factory=dict)
    held_out_basis: str = ""
    # a prediction for a kind of layout the profile's runs did not use (attention DP, several
    # nodes, prefill/decode disaggregation): the measured error of such predictions (empty
    # where none was measured) and what it rests on; "" when the profile's runs used it
    layout_band_pct: dict[str, float] = field(default_factory=dict)
    layout_basis: str = ""

    @property
    def kv_capacity_factor(self) -> float:
        """The profile's KV capacity factor (1 when uncalibrated)."""
        return self.profile.kv_capacity_factor if self.profile else 1.0

    @property
    def band_cross_validated(self) -> bool:
        """The band is this GPU and engine's own cross-validated error (not a measurement on
        other runs standing in for it)."""
        return (
            self.status == "calibrated"
            and self.profile is not None
            and bool(self.profile.cross_validated_mape)
            and not self.model_extrapolated
        )

    @property
    def model_note(self) -> str:
        """Which architectures the profile was fitted on, where this prediction is for
        another ("" otherwise)."""
        if not self.model_extrapolated or self.profile is None:
            return ""
        return f"fitted on {', '.join(self.profile.model_types)} runs"

    @property
    def model_extrapolated(self) -> bool:
        """The prediction is for a model architecture the profile was not fitted on."""
        return bool(self.model_basis)

    @property
    def layout_note(self) -> str:
        """Which kinds of layout the profile's runs used, where this prediction is for
        another ("" otherwise)."""
        if not self.layout_extrapolated or self.profile is None:
            return ""
        return f"fitted on {'/'.join(self.profile.layouts)} layouts"

    @property
    def layout_extrapolated(self) -> bool:
        """The prediction is for a kind of layout the profile's runs did not use."""
        return bool(self.layout_basis)

    @property
    def error_band_pct(self) -> dict[str, float]:
        """Median error per metric (percent): cross-validated, of this GPU and engine's own
        profile; for an extrapolation, the measured error of extrapolating the engine's
        profiles to another GPU's runs (the home profile's error does not carry over); empty
        where neither was measured. For a model the profile was not fitted on, or a kind of
        layout its runs did not use, only the metrics measured for such predictions count,
        each at the largest of the errors: the fitted runs' small error says nothing about
        another architecture or another way of running the engine."""
        if self.status == "extrapolated":
            band = dict(self.extrapolation_band_pct)
        elif self.status != "calibrated" or self.profile is None:
            band = {}
        else:
            band = dict(self.profile.cross_validated_mape or self.held_out_band_pct)
        # each way the prediction leaves what the profile was fitted on (another model
        # architecture, another kind of layout) keeps only the metrics measured for every
        # such way, at the largest error measured
        dims = [
            other
            for left, other in (
                (self.model_extrapolated, self.model_band_pct),
                (self.layout_extrapolated, self.layout_band_pct),
            )
            if left
        ]
        if not dims:
            return band
        return {
            m: max(band.get(m, 0.0), *(d[m] for d in dims))
            for m in dims[0]
            if all(m in d for d in dims)
        }

    def describe(self) -> dict[str, object]:
        """For reports: status, profile, error band, and what the band rests on."""
        kernels = self.params.kernels
        return {
            "status": self.status,
            "profile": None
            if self.profile is None
            else f"{self.profile.id} v{self.profile.version}",
            "note": self.note,
            "error_band_pct": self.error_band_pct,
            "runs_kv_dtype": self.profile.kv_dtype if self.profile else None,
            "runs_prompts": self.profile.prompts if self.profile else None,
            "error_band_basis": self.error_band_basis,
            "error_band_cross_validated": self.band_cross_validated,
            "profile_model_types": list(self.profile.model_types) if self.profile else [],
            "model_extrapolated": self.model_extrapolated,
            "profile_layouts": list(self.profile.layouts) if self.profile else [],
            "layout_extrapolated": self.layout_extrapolated,
            "kernel_tables": kernels.source if kernels is not None else None,
        }

    @property
    def error_band_basis(self) -> str:
        """What the error band rests on (or why there is none)."""
        dims = [
            (band, basis)
            for left, band, basis in (
                (self.model_extrapolated, self.model_band_pct, self.model_basis),
                (self.layout_extrapolated, self.layout_band_pct, self.layout_basis),
            )
            if left
        ]
        if dims:
            missing = [basis for band, basis in dims if not band]
            if missing:
                return "none measured: " + "; ".join(missing)
            parts = [basis for _, basis in dims]
            if self.status == "extrapolated" and self.extrapolation_band_pct:
                parts.append(self.extrapolation_basis)
            if self.status == "calibrated" and self.profile is not None:
                if self.profile.cross_validated_mape:
                    parts.append("cross-validated error of this GPU and engine's runs")
                elif self.held_out_band_pct:
                    parts.append(self.held_out_basis)
            if len(parts) == 2:
                return "; ".join(parts) + " (larger of the two)"
            return "; ".join(parts) + (" (largest of them)" if len(parts) > 2 else "")
        if self.status == "extrapolated" and self.extrapolation_band_pct:
            return self.extrapolation_basis
        own = self.status == "calibrated" and self.profile is not None
        if own and self.profile is not None and not self.profile.cross_validated_mape:
            if self.held_out_band_pct:
                return self.held_out_basis
            return f"none measured: {self.held_out_basis or 'no cross-validation'}"
        if self.error_band_pct:
            return "cross-validated error of this GPU and engine's runs"
        return "none measured for this (GPU, engine)" + (
            f": {self.extrapolation_basis}" if self.extrapolation_basis else ""
        )


def choose_calibration(
    profiles: Sequence[CalibrationProfile],
    gpu: str,
    engine: str,
    model_type: str | None = None,
    layout: str | None = None,
) -> Calibration:
    """This GPU and engine's newest profile, one whose runs served `model_type` before any
    other (a team's GLM-5 refit does not replace the DeepSeek profile for DeepSeek), then one
    whose runs used the kind of `layout` (a refit on attention-DP runs does not replace the
    single-node profile for single-node layouts); else the same engine on another GPU
    (efficiencies are relative to each GPU's peak); else moerun's uncalibrated defaults."""
    same = [p for p in profiles if p.gpu == gpu and p.engine == engine]
    if same:
        p = max(
            same,
            key=lambda q: (
                model_type is not None and model_type in q.model_types,
                layout is not None and layout in q.layouts,
                q.version,
            ),
        )
        return Calibration("calibrated", p.params, p, f"fitted on {len(p.fitted_on)} measured runs")
    other = [p for p in profiles if p.engine == engine] or list(profiles)
    if other:
        p = max(other, key=lambda q: (len(q.fitted_on), q.version))
        note = f"extrapolated from {p.gpu} / {p.engine} ({p.id} v{p.version})"
        return Calibration("extrapolated", p.params, p, note)
    return Calibration(
        "uncalibrated", StepParams(), None, "no calibration profile: moerun defaults"
    )
