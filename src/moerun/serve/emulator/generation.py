"""One completion through the emulated engine: plan it, submit it, stream what each step makes.

The synthetic model answers with deterministic words (`moerun.core.load.synthetic_text`), the same
words for the same prompt. Its length: `max_tokens` (or `max_completion_tokens`) when
`ignore_eos` is set, else it "emits EOS" after `default_output_tokens` unless `max_tokens` is
smaller, never fewer than `min_tokens`; stop strings end it early. A GLM model thinking (the
default, off with `chat_template_kwargs.enable_thinking: false`) spends the first half of its
tokens on `reasoning_content`.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from moerun.core.load.synthetic_text import chain_key, output_offset, output_words, prompt_segments
from moerun.serve.emulator.engine import Delta, EmulatedEngine, Handle
from moerun.serve.emulator.faults import RequestFaults
from moerun.serve.emulator.wire import ChatRequest, ChunkWriter, CompletionRequest, prompt_parts


class RequestError(Exception):
    """A request the emulator refuses, with its HTTP status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class DroppedConnection(Exception):
    """Raised mid-response to make the server close the connection (fault injection)."""


@dataclass(frozen=True, slots=True)
class Limits:
    """What the deployment and the emulator's settings impose on a request."""

    max_context: int
    block_tokens: int
    default_output_tokens: int
    thinking_model: bool


@dataclass(frozen=True, slots=True)
class Plan:
    """What the synthetic model will do with one request."""

    prompt_tokens: int
    segments: tuple[tuple[str, int], ...]
    output_tokens: int
    length_limited: bool
    reasoning_tokens: int
    offset: int
    output_key: str | None
    stops: tuple[str, ...]


def plan(req: ChatRequest | CompletionRequest, limits: Limits) -> Plan:
    """Count the prompt, choose the output length, key the prefix; RequestError if invalid."""
    parts = prompt_parts(req)
    segments, last_key = prompt_segments(parts, limits.block_tokens)
    n_prompt = sum(n for _, n in segments)
    if n_prompt < 1:
        raise RequestError("the prompt is empty")
    room = limits.max_context - n_prompt
    cap = req.limit
    if (cap is not None and cap > room) or room < 1:
        raise RequestError(
            f"This model's maximum context length is {limits.max_context} tokens. However, you "
            f"requested {n_prompt + (cap or 1)} tokens ({n_prompt} in the messages, "
            f"{cap or 1} in the completion). Please reduce the length of the messages or "
            "completion."
        )
    limit = cap if cap is not None else room
    natural = limit if req.ignore_eos else min(limit, limits.default_output_tokens)
    n_out = max(natural, min(req.min_tokens, limit))
    thinking = False
    if isinstance(req, ChatRequest) and limits.thinking_model:
        kwargs = req.chat_template_kwargs or {}
        thinking = kwargs.get("enable_thinking", kwargs.get("thinking", True)) is not False
    offset = output_offset(last_key)
    output_key = None
    if isinstance(req, ChatRequest):
        # the next turn sends this answer back as one message: key it as that message
        output_key = chain_key(last_key, output_words(offset, 0, n_out))
    return Plan(
        prompt_tokens=n_prompt,
        segments=segments,
        output_tokens=n_out,
        length_limited=n_out == limit,
        reasoning_tokens=n_out // 2 if thinking else 0,
        offset=offset,
        output_key=output_key,
        stops=req.stops,
    )


Emit = Callable[[str], Awaitable[None]]


class Generation:
    """Streams one planned request; `run` returns (content, reasoning, finish, tokens, cached)."""

    def __init__(
        self, engine: EmulatedEngine, p: Plan, faults: RequestFaults, writer: ChunkWriter
    ) -> None:
        self.engine = engine
        self.plan = p
        self.faults = faults
        self.writer = writer
        self.content: list[str] = []
        self.reasoning: list[str] = []
        self.num_emitted = 0
        self.handle: Handle | None = None
        self._new_content = ""
        self._new_reasoning = ""

    async def submit(self) -> Handle:
        """Wait out a latency spike, then queue the request in the engine."""
        clock = self.engine.clock
        if self.faults.spike_s:
            await clock.sleep_until(clock.now() + self.faults.spike_s)
        p = self.plan
        self.engine.num_prompt_tokens += p.prompt_tokens
        self.handle = self.engine.submit(p.segments, p.output_tokens, output_key=p.output_key)
        return self.handle

    def abort(self) -> None:
        """Drop the request from the engine (client gone, stop string, injected drop)."""
        if self.handle is not None:
            self.engine.abort(self.handle)

    async def run(self, emit: Emit | None) -> tuple[str, int, int]:
        """Drive the request to its end, sending each step's text through `emit` (None: not
        streaming). Returns (finish reason, completion tokens, cached tokens)."""
        handle = self.handle or await self.submit()
        p, clock = self.plan, self.engine.clock
        half = max(1, math.ceil(p.output_tokens / 2))
        stall_s, drop = self.faults.stall_s, self.faults.drop
        while True:
            d: Delta = await handle.queue.get()
            if d.error is not None:
                raise RequestError(d.error, 400)
            finish = None
            if d.num_tokens:
                crossing = self.num_emitted + d.num_tokens >= half
                if drop and crossing and d.num_tokens < p.output_tokens:
                    self.abort()
                    raise DroppedConnection
                finish = self._take(d.num_tokens)
            if finish is None and d.finished:
                finish = "length" if p.length_limited else "stop"
            if emit is not None and (d.num_tokens or finish):
                text = self._last_event()
                if finish is not None:
                    text += self.writer.finish(finish)
                await emit(text)
            if finish is not None:
                if not d.finished:
                    self.abort()  # a stop string ended it before the engine did
                return finish, self.num_emitted, d.cached_tokens
            if stall_s and self.num_emitted >= half:
                await clock.sleep_until(clock.now() + stall_s)
                stall_s = 0.0

    def _take(self, n: int) -> str | None:
        """Turn `n` new tokens into text; 'stop' if a stop string appeared."""
        p = self.plan
        start = self.num_emitted
        words = output_words(p.offset, start, n)
        n_think = max(0, min(n, p.reasoning_tokens - start))
        self._new_reasoning = " ".join(words[:n_think])
        if self._new_reasoning and start:
            self._new_reasoning = " " + self._new_reasoning
        piece = " ".join(words[n_think:])
        if piece and start + n_think > p.reasoning_tokens:
            piece = " " + piece
        self.num_emitted += n
        self._new_content = piece
        if self._new_reasoning:
            self.reasoning.append(self._new_reasoning)
        if not piece:
            return None
        before = sum(len(c) for c in self.content)
        self.content.append(piece)
        if p.stops:
            text = "".join(self.content)
            window = max(len(s) for s in p.stops)
            hits = [i for s in p.stops if (i := text.find(s, max(0, before - window))) >= 0]
            if hits:
                cut = min(hits)
                self._new_content = text[before:cut] if cut > before else ""
                self.content = [text[:cut]]
                return "stop"
        return None

    def _last_event(self) -> str:
        if not (self._new_content or self._new_reasoning):
            return ""
        return self.writer.delta(self._new_content, self._new_reasoning)

    @property
    def text(self) -> tuple[str, str]:
        """(content, reasoning) so far."""
        return "".join(self.content), "".join(self.reasoning)
