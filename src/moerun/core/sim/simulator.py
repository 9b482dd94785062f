"""Discrete-event simulation of engine replicas behind a router, driven by a workload.

Events are session-turn arrivals and step ends. A replica that has work runs steps back to
back; a request that arrives mid-step joins at the next step. A session's next turn arrives
`think_s` after its previous turn finished; in a closed loop a new session starts when one
ends. A closed loop's clients start together (as benchmark clients start them), or, with
`Arrival.staggered`, spread over one session's length in decode steps (the steady state of a
long run whose clients drifted apart: fixed lengths started together stay in lock-step waves
under a prefill-first schedule, every prompt of a wave waiting behind the others). The spread
is counted in steps, not seconds, so the schedule still does not depend on step times
(calibration re-prices recorded steps). With prefill/decode disaggregation a request is
prefilled on a prefill instance, its KV cache crosses the network, and a decode instance
generates every output token. Every token reaches the client the profile's
`request_overhead_s` after its step (HTTP, tokenizer and IPC latency outside the steps).

The simulation is a function of its inputs: the same deployment, workload and options give
the same result.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field

import numpy as np

from moerun.core.load.metrics import RequestResult, Slo, summarize
from moerun.core.load.workload import Workload
from moerun.core.perf.step_time import StepBatch, StepModel
from moerun.core.sim.engine import EngineReplica, SimRequest, StepReport
from moerun.core.sim.router import Router
from moerun.core.traffic.balance import BalanceRule

_ARRIVE, _STEP_END, _HANDOFF = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Disaggregation:
    """Prefill/decode disaggregation: xPyD instances and the KV transfer between them."""

    num_prefill: int
    num_decode: int
    kv_bytes_per_token: int
    transfer_bytes_per_s: float
    transfer_latency_s: float = 0.0

    def transfer_s(self, tokens: int) -> float:
        """Seconds to move one prompt's KV cache from a prefill to a decode instance."""
        return (
            self.transfer_latency_s + tokens * self.kv_bytes_per_token / self.transfer_bytes_per_s
        )


@dataclass
class SimResult:
    """Per-request outcomes plus what the replicas saw; `summary()` gives the shared metrics."""

    results: list[RequestResult]
    num_gpus: int
    itl_ms: np.ndarray
    itl_weights: np.ndarray
    num_steps: int
    num_preemptions: int
    kv_usage_mean: float
    kv_usage_peak: float
    prefix_query_tokens: int
    prefix_hit_tokens: int
    num_prefill_tokens: int = 0  # prompt tokens actually computed (prefix hits excluded)
    rejections: list[str] = field(default_factory=list)
    trace: StepTrace | None = None
    trace_model: StepModel | None = None

    def summary(self, slo: Slo | None = None) -> dict[str, object]:
        """The metric report (same keys as `moerun bench`), plus engine-side figures."""
        out = summarize(
            self.results,
            num_gpus=self.num_gpus,
            itl_ms=self.itl_ms,
            itl_weights=self.itl_weights,
            slo=slo,
        )
        out["num_steps"] = self.num_steps
        out["num_preemptions"] = self.num_preemptions
        out["num_prefill_tokens"] = self.num_prefill_tokens
        out["kv_usage"] = {"mean": self.kv_usage_mean, "peak": self.kv_usage_peak}
        out["engine_prefix_hit_rate"] = (
            self.prefix_hit_tokens / self.prefix_query_tokens if self.prefix_query_tokens else 0.0
        )
        if self.rejections:
            out["rejections"] = sorted(set(self.rejections))[:5]
        return out


@dataclass
class StepTrace:
    """Every step's batch and, per request, the steps its events fell on (for calibration:
    in a closed loop the batches do not depend on step times, so times are cumulative sums
    of re-priced steps). Index j means "after j steps"; only for a single replica."""

    batches: list[StepBatch] = field(default_factory=list)
    worked: list[bool] = field(default_factory=list)
    start_step: dict[int, int] = field(default_factory=dict)
    first_step: dict[int, int] = field(default_factory=dict)
    end_step: dict[int, int] = field(default_factory=dict)


class _Pool:
    """Replicas of one role, their router and whether each is mid-step."""

    def __init__(self, replicas: list[EngineReplica], router: Router) -> None:
        self.replicas = replicas
        self.router = router
        self.stepping = [False] * len(replicas)


def _session_steps(workload: Workload, replicas: list[EngineReplica]) -> float:
    """Steps of the decoding pool, all replicas together, that one closed-loop session lasts:
    its output tokens over the tokens a decode step emits per sequence."""
    sessions = workload.sessions
    mean_output = sum(t.output_tokens for s in sessions for t in s.turns) / max(1, len(sessions))
    return mean_output / replicas[0].model.tokens_per_decode_step * len(replicas)


def simulate(
    pool_replicas: list[EngineReplica],
    workload: Workload,
    *,
    routing: str = "round-robin",
    balance: BalanceRule | None = None,
    num_gpus: int,
    decode_replicas: list[EngineReplica] | None = None,
    disaggregation: Disaggregation | None = None,
    record: bool = False,
) -> SimResult:
    """Run `workload` through the replicas (prefill instances first when disaggregated)."""
    front = _Pool(pool_replicas, Router(routing, pool_replicas, balance))
    back = (
        _Pool(decode_replicas, Router(routing, decode_replicas, balance))
        if decode_replicas
        else None
    )
    assert (back is None) == (disaggregation is None)
    sessions = workload.sessions
    events: list[tuple[float, int, int]] = []
    arrivals: dict[int, tuple[int, int]] = {}
    handoffs: dict[int, SimRequest] = {}
    step_ends: dict[int, tuple[_Pool, int, StepReport]] = {}
    seq = itertools.count()
    rid_counter = itertools.count()
    meta: dict[int, tuple[int, int, float]] = {}  # request -> (session index, turn, start)
    first_s: dict[int, float] = {}
    results: list[RequestResult] = []
    rejections: list[str] = []
    itl_vals: list[float] = []
    itl_wts: list[int] = []
    kv_area = kv_time = kv_peak = 0.0
    num_steps = 0
    loop_steps = 0  # steps of the pool that decodes (counts the closed loop's ramp)
    prefill_tokens = 0
    pending = iter(range(len(sessions)))
    trace = StepTrace() if record else None
    # every token reaches the client this long after its step (HTTP, tokenizer, IPC); a closed
    # loop's next request still joins the step after the one that ends the previous, so the
    # schedule does not depend on it (calibration re-prices recorded steps)
    overhead_s = pool_replicas[0].model.params.request_overhead_s
    assert not record or (len(pool_replicas) == 1 and decode_replicas is None)

    def push_arrival(t: float, s_idx: int, turn: int) -> None:
        n = next(seq)
        arrivals[n] = (s_idx, turn)
        heapq.heappush(events, (t, n, _ARRIVE))

    def start_step(pool: _Pool, i: int, t: float) -> None:
        report = pool.replicas[i].step(t)
        pool.stepping[i] = True
        n = next(seq)
        step_ends[n] = (pool, i, report)
        heapq.heappush(events, (t + report.duration_s, n, _STEP_END))

    def submit(pool: _Pool, req: SimRequest, t: float) -> None:
        i = pool.router.choose(req)
        pool.replicas[i].submit(req)
        if not pool.stepping[i]:
            start_step(pool, i, t)

    def arrive(s_idx: int, turn: int, t: float) -> None:
        s = sessions[s_idx]
        rid = next(rid_counter)
        meta[rid] = (s_idx, turn, t)
        if trace is not None:
            trace.start_step[rid] = num_steps
        out_key = f"s{s.session_id}.t{turn}.out" if turn + 1 < len(s.turns) else None
        req = SimRequest(
            rid,
            tuple(s.prompt_segments(turn)),
            s.turns[turn].output_tokens,
            t,
            out_key,
            "prefill_only" if back is not None else "normal",
        )
        submit(front, req, t)

    def session_done(t: float) -> None:
        if workload.arrival.kind == "closed":
            nxt = next(pending, None)
            if nxt is not None:
                # through the event queue, like a next turn: the client sends its next request
                # after the response, so it joins the step after the one that ends now
                push_arrival(t, nxt, 0)

    def finish(rid: int, cached: int, n_out: int, t: float, ok: bool, error: str | None) -> None:
        s_idx, turn, start = meta.pop(rid)
        s = sessions[s_idx]
        results.append(
            RequestResult(
                request_id=rid,
                start_s=start,
                end_s=t + overhead_s,
                input_tokens=s.input_tokens(turn),
                output_tokens=n_out,
                first_token_s=first_s.pop(rid, None),
                cached_tokens=cached,
                session_id=s.session_id,
                turn=turn,
                ok=ok,
                error=error,
            )
        )
        if ok and turn + 1 < len(s.turns):
            push_arrival(t + overhead_s + s.turns[turn + 1].think_s, s_idx, turn + 1)
        else:
            session_done(t)

    # the first arrivals
    ramp: list[int] = []  # closed loop: the steps after which the next client starts
    if workload.arrival.kind == "closed":
        assert workload.arrival.concurrency is not None
        clients = min(workload.arrival.concurrency, len(sessions))
        if workload.arrival.staggered:
            steps = _session_steps(workload, (back or front).replicas)
            ramp = [round(j * steps / clients) for j in range(1, clients)]
        for _ in range(clients - len(ramp)):
            push_arrival(0.0, next(pending), 0)
    else:
        for idx, s in enumerate(sessions):
            push_arrival(s.start_s or 0.0, idx, 0)

    handoff: dict[int, tuple[int, float]] = {}  # request -> (cached tokens, prefill end)
    t = 0.0
    while events or ramp:
        if not events:  # every replica idle before the ramp ended: start the rest now
            for _ in ramp:
                nxt = next(pending, None)
                if nxt is not None:
                    push_arrival(t, nxt, 0)
            ramp.clear()
            continue
        t, n, kind = heapq.heappop(events)
        if kind == _ARRIVE:
            arrive(*arrivals.pop(n), t)
            continue
        if kind == _HANDOFF:
            assert back is not None
            submit(back, handoffs.pop(n), t)
            continue
        pool, i, report = step_ends.pop(n)
        num_steps += 1
        if ramp and pool is (back or front):
            loop_steps += 1
            while ramp and ramp[0] <= loop_steps:
                ramp.pop(0)
                nxt = next(pending, None)
                if nxt is not None:
                    push_arrival(t, nxt, 0)
        prefill_tokens += int(report.batch.prefill_tokens)
        if trace is not None:
            trace.batches.append(report.batch)
            trace.worked.append(report.duration_s > 0)
            for rid in report.first_token:
                trace.first_step[rid] = num_steps
            for rid, _, _ in report.finished:
                trace.end_step[rid] = num_steps
            for rid, _ in report.rejected:
                trace.end_step[rid] = num_steps
        replica = pool.replicas[i]
        if report.duration_s > 0:
            usage = replica.kv_usage()
            kv_area += usage * report.duration_s
            kv_time += report.duration_s
            kv_peak = max(kv_peak, usage)
            if report.batch.decode_seqs:
                itl_vals.append(report.duration_s * 1e3)
                itl_wts.append(int(report.batch.decode_seqs))
        for rid, reason in report.rejected:
            rejections.append(reason)
            finish(rid, 0, 0, t, False, reason)
        if back is not None and pool is front:
            assert disaggregation is not None
            for rid, cached, _ in report.finished:
                s_idx, turn, _start = meta[rid]
                s = sessions[s_idx]
                handoff[rid] = (cached, t)
                out_key = f"s{s.session_id}.t{turn}.out" if turn + 1 < len(s.turns) else None
                req = SimRequest(
                    rid,
                    tuple(s.prompt_segments(turn)),
                    s.turns[turn].output_tokens,
                    t,
                    out_key,
                    "preloaded",
                )
                n = next(seq)
                handoffs[n] = req
                heapq.heappush(
                    events, (t + disaggregation.transfer_s(req.input_tokens), n, _HANDOFF)
                )
        else:
            for rid in report.first_token:
                first_s[rid] = t + overhead_s
            for rid, cached, n_out in report.finished:
                if back is not None:
                    cached = handoff.pop(rid, (cached, t))[0]
                finish(rid, cached, n_out, t, True, None)
        if replica.busy:
            start_step(pool, i, t)
        else:
            pool.stepping[i] = False

    all_replicas = front.replicas + (back.replicas if back else [])
    return SimResult(
        results=sorted(results, key=lambda r: r.request_id),
        num_gpus=num_gpus,
        itl_ms=np.array(itl_vals, dtype=float),
        itl_weights=np.array(itl_wts, dtype=float),
        num_steps=num_steps,
        num_preemptions=sum(r.num_preemptions for r in all_replicas),
        kv_usage_mean=kv_area / kv_time if kv_time else 0.0,
        kv_usage_peak=kv_peak,
        prefix_query_tokens=sum(r.kv.query_tokens for r in front.replicas),
        prefix_hit_tokens=sum(r.kv.hit_tokens for r in front.replicas),
        num_prefill_tokens=prefill_tokens,
        rejections=rejections,
        trace=trace,
        trace_model=pool_replicas[0].model if record else None,
    )
