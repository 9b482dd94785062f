"""The simulator's engine replica run against a clock, feeding each request's stream.

As in the simulator (`moerun.core.sim.simulator`): a replica with work runs steps back to
back; `step(t)` says what one step does and how long it takes; at the step's end (emulated
time, a timer on the clock) each request gets the tokens the step produced, its end, or its
rejection, and the next step starts. An idle replica starts a step the moment a request
arrives; a request that arrives mid-step joins at the next step.

Steps keep the emulated schedule: the next step starts when the last one was due to end, not
when its timer fired. A busy host fires timers late; starting from the late time would add
that lag to every step (at time scale 8, 0.4 ms of real lag is 3 ms per 55 ms step, which
made a fleet of emulators decode 8% slower than the simulator predicts). Lag then only
delays a delivery. A step never starts before the last arrival or abort it may see.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from moerun.core.sim.engine import EngineReplica, SimRequest, StepReport
from moerun.core.sim.kv_pool import Segment
from moerun.serve.emulator.clock import Clock


@dataclass(slots=True)
class Delta:
    """What one step did for one request."""

    num_tokens: int = 0
    finished: bool = False
    cached_tokens: int = 0
    error: str | None = None


class Handle:
    """One submitted request: its deltas arrive on `queue`."""

    __slots__ = ("arrival_s", "queue", "request_id")

    def __init__(self, request_id: int, arrival_s: float) -> None:
        self.request_id = request_id
        self.arrival_s = arrival_s
        self.queue: asyncio.Queue[Delta] = asyncio.Queue()


class EmulatedEngine:
    """Owns one replica and runs its steps on the clock's timers."""

    def __init__(
        self,
        replica: EngineReplica,
        clock: Clock,
        *,
        on_first_token: Callable[[float], None] | None = None,
    ) -> None:
        self.replica = replica
        self.clock = clock
        self.on_first_token = on_first_token
        self._handles: dict[int, Handle] = {}
        self._next_id = 0
        self._timer: asyncio.TimerHandle | None = None
        # emulated times: when the last step was due to end, and the last arrival or abort
        self._due_s = 0.0
        self._event_s = 0.0
        self.num_steps = 0
        self.num_finished = 0
        self.num_prompt_tokens = 0
        self.num_generation_tokens = 0

    def submit(
        self, segments: tuple[Segment, ...], output_tokens: int, *, output_key: str | None = None
    ) -> Handle:
        """Queue a request now; it joins the next step (at once if the replica is idle)."""
        rid = self._next_id
        self._next_id += 1
        now = self.clock.now()
        self._event_s = now
        handle = Handle(rid, now)
        self._handles[rid] = handle
        self.replica.submit(SimRequest(rid, segments, output_tokens, now, output_key))
        self._kick()
        return handle

    def abort(self, handle: Handle) -> None:
        """Drop a request (its client went away or a stop string ended it)."""
        if self._handles.pop(handle.request_id, None) is not None:
            self._event_s = self.clock.now()
            self.replica.abort(handle.request_id)
            self._kick()

    def stop(self) -> None:
        """Cancel the step in progress (the engine stops)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _kick(self) -> None:
        if self._timer is None and self.replica.busy:
            self._start_step()

    def _start_step(self) -> None:
        # back to back on the schedule (see the module docstring), never before what it sees;
        # never after now (a timer may fire a clock tick early)
        start_s = min(max(self._due_s, self._event_s), self.clock.now())
        report = self.replica.step(start_s)
        self.num_steps += 1
        self._timer = self.clock.call_at(
            report.start_s + report.duration_s, lambda: self._end_step(report)
        )

    def _end_step(self, report: StepReport) -> None:
        self._timer = None
        self._due_s = report.start_s + report.duration_s
        progressed = self._deliver(report)
        # a step that could schedule nothing waits for an arrival or an abort to change that
        if self.replica.busy and (progressed or report.duration_s > 0):
            self._start_step()

    def _deliver(self, report: StepReport) -> bool:
        deltas: dict[int, Delta] = {}
        for rid, n in report.tokens:
            deltas.setdefault(rid, Delta()).num_tokens += n
            self.num_generation_tokens += n
        for rid, cached, _ in report.finished:
            d = deltas.setdefault(rid, Delta())
            d.finished, d.cached_tokens = True, cached
            self.num_finished += 1
        for rid, reason in report.rejected:
            deltas[rid] = Delta(error=reason, finished=True)
        if self.on_first_token is not None:
            now = self.clock.now()
            for rid in report.first_token:
                h = self._handles.get(rid)
                if h is not None:
                    self.on_first_token(now - h.arrival_s)
        # every token reaches the client the profile's request overhead after its step (the
        # serving stack's HTTP, tokenizer and IPC latency), as the simulator reports it
        delay_s = self.replica.model.params.request_overhead_s
        for rid, d in deltas.items():
            handle = self._handles.get(rid)
            if handle is None:
                continue
            if d.finished:
                del self._handles[rid]
            if delay_s > 0:
                self.clock.call_at(self.clock.now() + delay_s, partial(handle.queue.put_nowait, d))
            else:
                handle.queue.put_nowait(d)
        return bool(deltas or report.first_token)
