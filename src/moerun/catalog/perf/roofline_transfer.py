"""Roofline efficiencies for a GPU without measured kernel tables, read off one that has them.

Where the catalog has no kernel tables (AMD), every operation is priced by the roofline, and
the roofline needs the fraction of peak compute and bandwidth the engine's kernels reach. A
profile fitted with tables never fits those fractions (the tables price the kernels), so its
efficiencies are unfitted defaults, and a roofline at the defaults came out 2-4x faster than
MI355X measured (catalog/data/measurements: GXM rows). Instead, the fractions are taken from
the profile's own GPU: the GEMM, memory and attention efficiencies, and a per-step floor (the
latency-bound kernels a one-sequence step spends milliseconds in, which no roofline sees), with
which the roofline reproduces, on that GPU, the table-priced steps (times the profile's kernel
scale) of the model being predicted (a catalog model of its architecture, FP8 weights, TP over
one node of the profile's GPU, so its own module tables, GLM-5's DSA attention, set the
fractions; without a model, the deployments the profile was fitted on), over decode batches
of 1-256 sequences at 1K and 8K context and prefill chunks of 1K-16K tokens. The other GPU is
then priced at those fractions of its own peaks, with the same floor. What that is worth is
measured, not assumed: the extrapolation rows of catalog/data/extrapolation_error.yaml for GPUs
without tables.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import least_squares

from moerun.catalog.engines import get_engine, get_reserve
from moerun.catalog.gpus import get_gpu
from moerun.catalog.models import load_spec, model_index
from moerun.catalog.perf.measurements import all_catalog_measurements
from moerun.core.calibrate.calibration import FIT_BOUNDS, CalibrationProfile
from moerun.core.deploy.deployment import Deployment
from moerun.core.deploy.parallel import Parallel
from moerun.core.perf.step_time import StepBatch, StepModel, StepParams

# the efficiencies transferred, and the steps they are read off
TRANSFERRED = ("gemm_efficiency", "mem_efficiency", "attn_efficiency")
# the tables' floor: a step of one sequence costs milliseconds of latency-bound kernels the
# roofline does not see; read off as a per-step time (added to the profile's own overhead)
FLOOR = "step_overhead_s"
FITTED = (*TRANSFERRED, FLOOR)
DECODE_SEQS = (1, 4, 16, 64, 256)
DECODE_CONTEXTS = (1024, 8192)
PREFILL_TOKENS = (1024, 4096, 16384)


@dataclass(frozen=True, slots=True)
class Transfer:
    """The efficiencies read off `gpu`'s tables, and how well the roofline then matched them."""

    gpu: str
    efficiencies: dict[str, float]
    floor_s: float  # per step, on top of the profile's own step overhead
    deployments: int  # the reference deployments they were read off
    median_abs_pct: float  # the roofline against the tables on those steps, after the fit

    def describe(self) -> str:
        """One line for a calibration note."""
        eff = ", ".join(f"{k.split('_')[0]} {v:.2f}" for k, v in self.efficiencies.items())
        return (
            f"kernels by the roofline at the fractions of peak {self.gpu}'s measured kernels "
            f"reach ({eff}; floor {self.floor_s * 1e3:.1f} ms per step; within "
            f"{self.median_abs_pct:.0f}% of its tables)"
        )

    def apply(self, params: StepParams) -> StepParams:
        """`params` (no tables) with these efficiencies and the floor added per step."""
        return replace(
            params,
            step_overhead_s=params.step_overhead_s + self.floor_s,
            **self.efficiencies,  # type: ignore[arg-type]
        )


def reference_batches() -> list[StepBatch]:
    """Decode steps (sequences x context) and single-prompt prefill chunks."""
    out = [
        StepBatch(decode_seqs=n, decode_attended=n * min(c, 2048), decode_context=n * c)
        for n in DECODE_SEQS
        for c in DECODE_CONTEXTS
    ]
    out += [
        StepBatch(
            prefill_tokens=t,
            prefill_seqs=1,
            prefill_attended=t * (t + 1) / 2,
            prefill_context=t * (t + 1) / 2,
            prefill_logits=1,
        )
        for t in PREFILL_TOKENS
    ]
    return out


_DONE: dict[tuple[object, ...], Transfer | None] = {}


def transfer(
    profile: CalibrationProfile, home_params: StepParams, model_type: str | None = None
) -> Transfer | None:
    """The efficiencies of `profile` (whose `home_params` carry its GPU's tables) for a GPU
    without tables, read off steps of a `model_type` model (else of its fitted runs); None
    where there is nothing to read them off. Read once per profile, parameters and model."""
    key: tuple[object, ...] = (profile.id, profile.version, profile.gpu, profile.engine)
    key += (profile.fitted_on, home_params, id(home_params.kernels), model_type)
    if key not in _DONE:
        deps = _model_deployments(profile, model_type) if model_type else []
        _DONE[key] = _transfer(profile, home_params, deps or _fitted_deployments(profile))
    return _DONE[key]


def _transfer(
    profile: CalibrationProfile, home_params: StepParams, deps: list[Deployment]
) -> Transfer | None:
    if not deps or home_params.kernels is None:
        return None
    return read_off(profile.gpu, deps, home_params)


def read_off(gpu: str, deps: list[Deployment], measured: StepParams) -> Transfer:
    """The fractions of peak and the per-step floor with which the roofline (no tables)
    reproduces `measured`'s price of `deps`' reference steps on their GPU, `gpu`, the
    measured side's own overheads left out of both."""
    quiet = {"step_overhead_s": 0.0, "seq_overhead_s": 0.0, "request_overhead_s": 0.0}
    target_params = replace(measured, **quiet)  # type: ignore[arg-type]
    batches = reference_batches()
    models = [StepModel(d, target_params) for d in deps]
    target = np.log([m.step_time_s(b) for m in models for b in batches])
    roof = replace(target_params, kernels=None)
    lo = np.array([FIT_BOUNDS[n][0] for n in FITTED])
    hi = np.array([FIT_BOUNDS[n][1] for n in FITTED])

    def priced(x: np.ndarray) -> np.ndarray:
        p = replace(roof, **dict(zip(FITTED, map(float, x), strict=True)))  # type: ignore[arg-type]
        return np.log([m.with_params(p).step_time_s(b) for m in models for b in batches])

    x0 = np.clip([getattr(StepParams(), n) for n in FITTED], lo, hi)
    sol = least_squares(lambda x: priced(x) - target, x0, bounds=(lo, hi), method="trf")
    error = float(np.median(np.abs(np.expm1(priced(sol.x) - target)))) * 100
    values = {n: float(v) for n, v in zip(FITTED, sol.x, strict=True)}
    floor = values.pop(FLOOR)
    return Transfer(gpu, values, floor, len(deps), error)


def _model_deployments(profile: CalibrationProfile, model_type: str) -> list[Deployment]:
    """One node of the profile's GPU serving the first catalog model of `model_type` with FP8
    weights at TP over the node (empty where the catalog has no such model)."""
    gpu = get_gpu(profile.gpu)
    for mid in model_index():
        spec = load_spec(mid)
        if spec.arch.model_type == model_type:
            node = gpu.gpus_per_node
            dep = Deployment(
                model=spec,
                gpu=gpu,
                num_gpus=node,
                engine=get_engine(profile.engine),
                reserve=get_reserve(),
                weights="fp8",
                kv_dtype="bf16",
                parallel=Parallel(tp=node),
            )
            return [dep]
    return []


def _fitted_deployments(profile: CalibrationProfile) -> list[Deployment]:
    """The distinct deployments of the runs `profile` was fitted on, on its GPU, without MTP
    (the reference is the kernels; MTP's passes are priced the same way on both GPUs)."""
    runs = {r.id: r for r in all_catalog_measurements()[0]}
    seen: dict[tuple[object, ...], Deployment] = {}
    for rid in profile.fitted_on:
        r = runs.get(rid)
        if r is None:
            continue
        key = (r.model, r.weights, r.kv_dtype, r.parallel, r.num_gpus)
        if key not in seen:
            seen[key] = Deployment(
                model=load_spec(r.model),
                gpu=get_gpu(profile.gpu),
                num_gpus=r.num_gpus,
                engine=get_engine(profile.engine),
                reserve=get_reserve(),
                weights=r.weights,
                kv_dtype=r.kv_dtype,
                parallel=r.parallel,
            )
    return list(seen.values())
