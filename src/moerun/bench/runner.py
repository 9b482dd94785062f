"""The load generator: sessions of turns sent to an OpenAI-compatible endpoint on schedule.

Arrivals follow the workload (`moerun.core.load.workload`): a closed loop keeps `concurrency`
sessions in flight (a new one starts when one ends, as `vllm bench serve --max-concurrency`
does); Poisson, burst and trace arrivals start each session at its `start_s`.

A session's turn k is sent `think_s` after turn k-1 ended. Its prompt is the session's system
prompt, then every earlier turn's new input and the answer the server actually returned
(content, and reasoning as `reasoning_content`, which GLM's chat template keeps), then turn
k's new input (the first turn's opens with the session's shared blocks, a replayed trace's
prefix-hash blocks): chat as system/user/assistant messages, completions as one text. Input text
comes from the workload's segment keys (`PromptText`), so shared segments are identical text.
A failed turn ends its session, as in the simulator (`moerun.core.sim.simulator`).

A run stops early when `stop` is set (Ctrl-C): in-flight requests are cancelled and not
recorded (`Outcome.num_unfinished` counts them); everything completed is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from moerun.bench.openai_api import ENDPOINTS, read_reply, request_body
from moerun.bench.prompts import PromptText
from moerun.bench.records import RequestRecord
from moerun.bench.transport import Transport
from moerun.core.load.synthetic_text import count_tokens
from moerun.core.load.workload import Session, Workload


@dataclass(frozen=True, slots=True)
class BenchConfig:
    """How requests are sent."""

    model: str
    endpoint: str = "chat"
    fixed_output: bool = True
    timeout_s: float | None = 600.0
    extra_body: dict[str, Any] = field(default_factory=dict)
    # an endpoint whose seconds are shorter (`moerun emulate --time-scale X`): the schedule
    # runs X times faster and every measured time is multiplied by X
    time_scale: float = 1.0


@dataclass(frozen=True, slots=True)
class Outcome:
    """A finished (or interrupted) run: records with times relative to `t0`."""

    records: tuple[RequestRecord, ...]
    duration_s: float
    interrupted: bool
    num_unfinished: int


class LoadGenerator:
    """Runs one workload against one endpoint; `on_record` sees each request as it ends."""

    def __init__(
        self,
        transport: Transport,
        config: BenchConfig,
        prompts: PromptText,
        *,
        now: Callable[[], float],
        on_record: Callable[[RequestRecord], None] | None = None,
    ) -> None:
        self.transport = transport
        self.config = config
        self.prompts = prompts
        self.now = now
        self.on_record = on_record
        self.records: list[RequestRecord] = []
        self._ids: dict[int, int] = {}
        self._in_flight = 0
        self._t0 = 0.0

    async def run(self, workload: Workload, stop: asyncio.Event | None = None) -> Outcome:
        """Send the whole workload (or until `stop` is set) and return what was measured."""
        with paused_gc():
            return await self._run(workload, stop)

    async def _run(self, workload: Workload, stop: asyncio.Event | None) -> Outcome:
        next_id = 0
        for s in workload.sessions:
            self._ids[s.session_id] = next_id
            next_id += len(s.turns)
        self._t0 = self.now()
        main = asyncio.ensure_future(self._drive(workload))
        waits: set[asyncio.Future[Any]] = {main}
        stopper = None if stop is None else asyncio.ensure_future(stop.wait())
        if stopper is not None:
            waits.add(stopper)
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        interrupted = not main.done()
        if interrupted:
            main.cancel()
            await asyncio.gather(main, return_exceptions=True)
        elif main.exception() is not None:
            raise main.exception()  # type: ignore[misc]
        if stopper is not None:
            stopper.cancel()
        duration = self._since_t0(self.now())
        records = tuple(sorted(self.records, key=lambda r: r.request_id))
        return Outcome(records, duration, interrupted, self._in_flight)

    def _since_t0(self, t: float) -> float:
        """Seconds from the run's start, in the endpoint's time."""
        return (t - self._t0) * self.config.time_scale

    async def _drive(self, workload: Workload) -> None:
        tasks: list[asyncio.Task[None]] = []
        try:
            if workload.arrival.kind == "closed":
                assert workload.arrival.concurrency is not None
                sessions = iter(workload.sessions)
                n = min(workload.arrival.concurrency, len(workload.sessions))
                tasks = [asyncio.ensure_future(self._worker(sessions)) for _ in range(n)]
            else:
                order = sorted(workload.sessions, key=lambda s: s.start_s or 0.0)
                for s in order:
                    delay = (s.start_s or 0.0) - self._since_t0(self.now())
                    if delay > 0:
                        await asyncio.sleep(delay / self.config.time_scale)
                    tasks.append(asyncio.ensure_future(self._session(s)))
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _worker(self, sessions: Iterator[Session]) -> None:
        for s in sessions:
            await self._session(s)

    async def _session(self, s: Session) -> None:
        prompts = self.prompts
        chat = self.config.endpoint == "chat"
        history: list[dict[str, str]] = []
        if s.system_key is not None and s.system_tokens:
            text = prompts.segment(s.system_key, s.system_tokens, shared=True)
            history.append({"role": "system", "content": text})
        for k, turn in enumerate(s.turns):
            if k and turn.think_s > 0:
                await asyncio.sleep(turn.think_s / self.config.time_scale)
            key = f"s{s.session_id}.t{k}.in"
            texts = [prompts.segment(bk, n, shared=True) for bk, n in s.blocks] if k == 0 else []
            texts.append(prompts.segment(key, turn.new_input_tokens))
            history.append({"role": "user", "content": " ".join(t for t in texts if t)})
            expected_in = s.input_tokens(k)
            if chat:
                body = request_body(
                    model=self.config.model,
                    max_tokens=turn.output_tokens,
                    messages=history,
                    fixed_output=self.config.fixed_output,
                    extra=self.config.extra_body,
                )
            else:
                prompt = " ".join(_flatten(history))
                body = request_body(
                    model=self.config.model,
                    max_tokens=turn.output_tokens,
                    prompt=prompt,
                    fixed_output=self.config.fixed_output,
                    extra=self.config.extra_body,
                )
            rec, content, reasoning = await self._send(
                self._ids[s.session_id] + k, s.session_id, k, body, expected_in, turn.output_tokens
            )
            if not rec.ok:
                return  # as in the simulator, a failed turn ends its session
            answer = {"role": "assistant", "content": content}
            if reasoning:
                answer["reasoning_content"] = reasoning
            history.append(answer)

    async def _send(
        self, rid: int, sid: int, turn: int, body: bytes, expected_in: int, expected_out: int
    ) -> tuple[RequestRecord, str, str]:
        chat = self.config.endpoint == "chat"
        start = self.now()
        self._in_flight += 1
        res = await self.transport.send(
            "POST", ENDPOINTS[self.config.endpoint], body, timeout_s=self.config.timeout_s
        )
        self._in_flight -= 1
        reply = read_reply(res, chat=chat)
        at = self._since_t0
        n_out = reply.completion_tokens
        if n_out is None:
            n_out = count_tokens(reply.content) + count_tokens(reply.reasoning)
        rec = RequestRecord(
            request_id=rid,
            session_id=sid,
            turn=turn,
            start_s=at(start),
            end_s=at(reply.end_s if reply.ok else res.end_s),
            chunk_s=tuple(at(t) for t in reply.chunk_s),
            input_tokens=reply.prompt_tokens if reply.prompt_tokens is not None else expected_in,
            output_tokens=n_out if reply.ok else 0,
            cached_tokens=reply.cached_tokens or 0,
            expected_input_tokens=expected_in,
            expected_output_tokens=expected_out,
            ok=reply.ok,
            error=reply.error,
            status=reply.status,
        )
        self.records.append(rec)
        if self.on_record is not None:
            self.on_record(rec)
        return rec, reply.content, reply.reasoning


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector: a run makes no cyclic garbage, and a full
    collection over millions of recorded chunk times stalls the loop for tens of ms, which
    would show up as timing error."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _flatten(messages: list[dict[str, str]]) -> Iterator[str]:
    for m in messages:
        for key in ("reasoning_content", "content"):
            text = m.get(key)
            if text:
                yield text
