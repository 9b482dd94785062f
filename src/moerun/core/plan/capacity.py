"""Analytic capacity: the highest request rate one replica sustains within a latency SLO.

A screen, not a simulation. In steady state with B sequences decoding, every engine step
decodes B sequences and emits tau = 1 + a + ... + a^k tokens for each (MTP k, acceptance a),
so requests finish, and (in steady state) arrive, a = B tau / O per step for mean output O.
Steps come in two kinds: decode-only steps (time t_d) and mixed steps that also carry prompt
chunks (time t_m, which pays the engine's per-prefill-step overhead). With arrivals Poisson per
step, a share m = max(1 - exp(-a q), c / R) of steps is mixed (q chunks per prompt, c = a P
new prompt tokens per step, R the step's room for them), capped at 1, so

    t = m t_m + (1 - m) t_d,   lambda = B tau / (O t),   TPOT = t / tau.

A request's p99 TPOT counts a p99 share of mixed steps among its O / tau steps (binomial).
TTFT is the residual step, an M/M/1 wait for prefill room at utilisation rho = c / R
(p99 wait = S ln(100 rho) / (1 - rho), S the mean service time), then the p99 prompt's own
chunks, plus the profile's per-request overhead outside the steps. KV must hold the decoding
contexts and the sessions idling between turns (so their prefix stays cached). Step times
come from the StepModel the simulator uses; finalists are then simulated, which replaces
these estimates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from moerun.core.deploy.deployment import Deployment
from moerun.core.deploy.memory_fit import MemoryFit
from moerun.core.deploy.mtp import Mtp
from moerun.core.load.metrics import Slo
from moerun.core.perf.step_time import StepBatch, StepModel, step_time
from moerun.core.plan.demand import WorkloadStats
from moerun.core.sim.build import ENGINE_POLICY

Z99 = 2.326  # standard normal 99th percentile
NUM_BATCH_POINTS = 48
KV_HEADROOM = 0.95  # the engine starts preempting before the pool is completely full


@dataclass(frozen=True, slots=True)
class ReplicaLimits:
    """What the engine allows one replica: KV tokens, sequences, tokens per step."""

    kv_capacity_tokens: int
    max_num_seqs: int
    max_batched_tokens: int

    @classmethod
    def of(cls, dep: Deployment, fit: MemoryFit, kv_capacity_factor: float = 1.0) -> ReplicaLimits:
        """The limits of a fitting deployment (per-rank engine caps times DP ranks), with the
        KV capacity scaled by the calibration's factor."""
        ranks = fit.num_kv_ranks
        return cls(
            kv_capacity_tokens=int(fit.kv_capacity_tokens * kv_capacity_factor),
            max_num_seqs=dep.max_num_seqs_per_rank(fit.kv_capacity_tokens_per_rank) * ranks,
            max_batched_tokens=dep.batched_tokens * ranks,
        )


@dataclass(frozen=True, slots=True)
class OperatingPoint:
    """One steady load level of a replica (or of a disaggregated unit)."""

    batch_size: float
    req_per_s: float
    tpot_p99_ms: float
    ttft_p99_ms: float
    output_tok_per_s: float
    # share of step time spent on prompt tokens (splits the cost between input and output)
    prefill_time_share: float


@dataclass(frozen=True, slots=True)
class Capacity:
    """The best load meeting the SLO (None if none does), the fastest point, what bound it."""

    best: OperatingPoint | None
    closest: OperatingPoint | None
    limit: str
    curve: tuple[OperatingPoint, ...] = ()

    @property
    def req_per_s(self) -> float:
        """Highest SLO-meeting request rate (0 when none)."""
        return self.best.req_per_s if self.best else 0.0


def with_mtp(model: StepModel, mtp: Mtp) -> StepModel:
    """The same replica drafting as `mtp` says, without re-walking the tensors.

    Equal to StepModel(replace(dep, mtp=mtp), ...): the MTP layer's weights are not in the
    shape (only its pass count is), so only the draft count and the emitted tokens change.
    """
    return model.with_deployment(replace(model.dep, mtp=mtp))


def _times(
    model: StepModel, decode: np.ndarray, prefill: np.ndarray, st: WorkloadStats
) -> np.ndarray:
    """Step times for `decode` sequences plus `prefill` new prompt tokens (element-wise)."""
    p = max(st.mean_new_tokens, 1.0)
    seqs = np.where(prefill > 0, np.maximum(prefill / p, 1.0), 0.0)
    batch = StepBatch(
        prefill_tokens=prefill,
        prefill_seqs=seqs,
        prefill_attended=prefill * st.mean_prefill_attended,
        prefill_context=prefill * st.mean_prefill_position,
        prefill_logits=seqs,
        decode_seqs=decode,
        decode_attended=decode * st.mean_decode_attended,
        decode_context=decode * st.mean_decode_context,
    )
    out: np.ndarray = step_time(model.shape, model.params, batch, np.maximum)
    return out


def _batch_grid(max_batch: int) -> np.ndarray:
    grid = np.unique(np.round(np.geomspace(1, max(1, max_batch), NUM_BATCH_POINTS)))
    return np.asarray(grid, dtype=float)


def _p99_wait_s(service_s: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """p99 waiting time of an M/M/1 queue: S ln(100 rho) / (1 - rho), 0 below rho = 1%."""
    with np.errstate(divide="ignore", invalid="ignore"):
        wait = service_s * np.log(np.maximum(100 * rho, 1.0)) / (1 - rho)
    return np.where(rho < 1, wait, np.inf)


def _p99_share(m: np.ndarray, num_steps: float) -> np.ndarray:
    """p99 of the mixed-step share among `num_steps` steps (binomial, normal approximation);
    a prefill-first engine can need more than one prefill step per decode step (m > 1),
    whose p99 is then at least m."""
    q = np.clip(m, 0.0, 1.0)
    spread = Z99 * np.sqrt(q * (1 - q) / max(num_steps, 1.0))
    return np.asarray(np.maximum(m, np.minimum(1.0, m + spread)))


def colocated_capacity(
    model: StepModel, limits: ReplicaLimits, st: WorkloadStats, slo: Slo
) -> Capacity:
    """Capacity of one replica that prefills and decodes on the same GPUs.

    vLLM mixes prompt chunks into decode steps; SGLang runs prefill-first steps that carry no
    decodes, so its decoders wait through them (both as the simulator schedules them).
    """
    k, tau = model.dep.mtp.num_draft_tokens, model.tokens_per_decode_step
    mixed = ENGINE_POLICY[model.dep.engine.name] == "mixed"
    o, p = max(st.mean_output_tokens, 1.0), max(st.mean_new_tokens, 1.0)
    b = _batch_grid(limits.max_num_seqs)
    room = limits.max_batched_tokens - (b * (k + 1) if mixed else 0.0)
    safe_room = np.maximum(room, 1.0)
    arrivals = b * tau / o  # requests arriving (and finishing) per decode step
    c = arrivals * p  # new prompt tokens per decode step
    chunks = np.maximum(1.0, p / safe_room)
    # prefill-carrying steps per decode step (a share of the steps when mixed)
    n_pre = np.maximum(1 - np.exp(-arrivals * chunks), c / safe_room)
    if mixed:
        n_pre = np.minimum(1.0, n_pre)
    chunk = np.minimum(c / n_pre, safe_room)
    t_d = _times(model, b, np.zeros_like(b), st)
    n99 = _p99_share(n_pre, o / tau)
    if mixed:
        t_m = _times(model, b, chunk, st)
        cycle = n_pre * t_m + (1 - n_pre) * t_d
        cycle99 = n99 * t_m + (1 - n99) * t_d
        prefill_s = n_pre * (t_m - t_d)
    else:
        t_m = _times(model, np.zeros_like(b), chunk, st)
        cycle = t_d + n_pre * t_m
        cycle99 = t_d + n99 * t_m
        prefill_s = n_pre * t_m
    lam = b * tau / (o * cycle)
    tpot = cycle99 / tau
    rho = np.where(room > 0, c / safe_room, np.inf)
    chunks_p99 = np.ceil(max(st.p99_new_tokens, 1.0) / safe_room)
    ttft = _p99_wait_s(chunks * t_m, rho) + chunks_p99 * t_m + np.maximum(t_m, t_d)
    ttft = ttft + model.params.request_overhead_s
    kv_need = b * st.mean_decode_context + lam * st.idle_token_s_per_request
    ok_kv = kv_need <= limits.kv_capacity_tokens * KV_HEADROOM
    ok_room = rho < 1
    share = prefill_s / cycle
    points = [
        OperatingPoint(
            float(b[i]),
            float(lam[i]),
            float(tpot[i] * 1e3),
            float(ttft[i] * 1e3),
            float(lam[i] * o),
            float(share[i]),
        )
        for i in range(b.size)
        if ok_kv[i] and ok_room[i]
    ]
    return _choose(points, slo, ok_kv, ok_room)


def disaggregated_capacity(
    model: StepModel,
    limits: ReplicaLimits,
    st: WorkloadStats,
    slo: Slo,
    num_prefill: int,
    num_decode: int,
    transfer_s: float,
) -> Capacity:
    """Capacity of one xPyD unit: x prefill-only and y decode-only instances of the replica."""
    tau = model.tokens_per_decode_step
    o, p = max(st.mean_output_tokens, 1.0), max(st.mean_new_tokens, 1.0)
    budget = float(limits.max_batched_tokens)
    t_full, t_one = _times(model, np.zeros(2), np.array([budget, min(p, budget)]), st)
    mu_p = num_prefill * budget / (float(t_full) * p)  # requests/s at full batching
    b = _batch_grid(limits.max_num_seqs)
    t_d = _times(model, b, np.zeros_like(b), st)
    lam = num_decode * b * tau / (o * t_d)
    rho = lam / mu_p
    service = np.full_like(b, max(1.0, p / budget) * float(t_one))
    first = math.ceil(max(st.p99_new_tokens, 1.0) / budget) * float(t_full)
    ttft = _p99_wait_s(service, rho) + first + transfer_s + t_d + model.params.request_overhead_s
    tpot = t_d / tau
    per_prefill = lam / num_prefill * st.idle_token_s_per_request
    ok_kv = (b * st.mean_decode_context <= limits.kv_capacity_tokens * KV_HEADROOM) & (
        per_prefill <= limits.kv_capacity_tokens * KV_HEADROOM
    )
    ok_room = rho < 1
    prefill_gpu_share = num_prefill / (num_prefill + num_decode)
    points = [
        OperatingPoint(
            float(b[i]),
            float(lam[i]),
            float(tpot[i] * 1e3),
            float(ttft[i] * 1e3),
            float(lam[i] * o),
            prefill_gpu_share,
        )
        for i in range(b.size)
        if ok_kv[i] and ok_room[i]
    ]
    return _choose(points, slo, ok_kv, ok_room)


def _choose(
    points: list[OperatingPoint], slo: Slo, ok_kv: np.ndarray, ok_room: np.ndarray
) -> Capacity:
    """The highest-rate point within the SLO; otherwise the fastest, and the bound that failed."""
    if not points:
        limit = "kv" if not ok_kv.any() else "prefill room"
        return Capacity(None, None, limit)
    meets = [q for q in points if _meets(q, slo)]
    closest = min(points, key=lambda q: (q.tpot_p99_ms, q.ttft_p99_ms))
    if not meets:
        tpot_ok = slo.tpot_ms is None or closest.tpot_p99_ms <= slo.tpot_ms
        return Capacity(None, closest, "ttft" if tpot_ok else "tpot", tuple(points))
    best = max(meets, key=lambda q: q.req_per_s)
    nxt = [q for q in points if q.batch_size > best.batch_size]
    if not nxt:
        limit = "kv" if not ok_kv.all() else "batch"
    else:
        q = min(nxt, key=lambda q: q.batch_size)
        limit = "tpot" if slo.tpot_ms is not None and q.tpot_p99_ms > slo.tpot_ms else "ttft"
    return Capacity(best, closest, limit, tuple(points))


def _meets(q: OperatingPoint, slo: Slo) -> bool:
    return (slo.tpot_ms is None or q.tpot_p99_ms <= slo.tpot_ms) and (
        slo.ttft_ms is None or q.ttft_p99_ms <= slo.ttft_ms
    )
