"""The emulator's ASGI app: an OpenAI-compatible server whose timing is the simulated engine's.

Routes: `POST /v1/chat/completions`, `POST /v1/completions` (streamed or not), `GET /v1/models`,
`GET /health`, `GET /metrics`. Written as a bare ASGI callable (no framework) so one process
serves hundreds of streams.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from moerun.core.deploy.deployment import Deployment
from moerun.core.sim.build import SimOptions, build_replica
from moerun.serve.emulator.clock import Clock, ScaledClock
from moerun.serve.emulator.engine import Delta, EmulatedEngine
from moerun.serve.emulator.faults import FaultInjector, Faults
from moerun.serve.emulator.generation import (
    DroppedConnection,
    Generation,
    Limits,
    RequestError,
    plan,
)
from moerun.serve.emulator.metrics import Histogram, render
from moerun.serve.emulator.wire import (
    ChatRequest,
    ChunkWriter,
    CompletionRequest,
    full_response,
    usage,
)
from moerun.wire.asgi import Receive, Scope, Send
from moerun.wire.openai_error import error_body

JSON = [(b"content-type", b"application/json")]
SSE = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]


@dataclass(frozen=True, slots=True)
class EmulatorSettings:
    """What the emulator serves and how."""

    served_model: str
    limits: Limits
    faults: Faults = field(default_factory=Faults)


class EmulatorApp:
    """The ASGI callable."""

    def __init__(self, settings: EmulatorSettings, engine: EmulatedEngine) -> None:
        self.settings = settings
        self.engine = engine
        self.ttft = Histogram()
        engine.on_first_token = self.ttft.observe
        self.injector = FaultInjector(settings.faults)
        self._count = 0

    def stop(self) -> None:
        """Stop the engine (cancel the step in progress)."""
        self.engine.stop()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"]
        if path in ("/v1/chat/completions", "/v1/completions"):
            if method != "POST":
                await _reply(send, 405, error_body("use POST", "MethodNotAllowed", 405))
                return
            await self._completion(receive, send, chat=path == "/v1/chat/completions")
        elif path == "/v1/models" and method == "GET":
            await _reply(send, 200, json.dumps(self._models()).encode())
        elif path == "/health" and method == "GET":
            await _reply(send, 200, b"", [])
        elif path == "/metrics" and method == "GET":
            text = render(self.engine, self.settings.served_model, self.ttft)
            await _reply(
                send, 200, text.encode(), [(b"content-type", b"text/plain; version=0.0.4")]
            )
        else:
            await _reply(send, 404, error_body(f"no route {method} {path}", "NotFoundError", 404))

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                self.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _models(self) -> dict[str, Any]:
        card = {
            "id": self.settings.served_model,
            "object": "model",
            "created": int(time.time()),
            "owned_by": "moerun-emulator",
            "root": self.settings.served_model,
            "max_model_len": self.settings.limits.max_context,
            # `moerun bench` reads this to run its schedule and report times in emulated time
            "moerun_time_scale": getattr(self.engine.clock, "time_scale", 1.0),
        }
        mtp = self.engine.replica.model.dep.mtp
        if mtp.num_draft_tokens:
            # and this, to predict with the acceptance the emulator drafts at (`--compare-sim`)
            card["moerun_mtp_acceptance"] = mtp.acceptance
        return {"object": "list", "data": [card]}

    async def _completion(self, receive: Receive, send: Send, *, chat: bool) -> None:
        raw = await _read_body(receive)
        try:
            req: ChatRequest | CompletionRequest = (
                ChatRequest.model_validate_json(raw)
                if chat
                else CompletionRequest.model_validate_json(raw)
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(x) for x in first["loc"])
            await _reply(send, 400, error_body(f"{where}: {first['msg']}", "BadRequestError", 400))
            return
        if req.model != self.settings.served_model:
            msg = f"The model `{req.model}` does not exist."
            await _reply(send, 404, error_body(msg, "NotFoundError", 404))
            return
        faults = self.injector.draw()
        if faults.error:
            msg = "injected fault (moerun emulate --error-rate)"
            await _reply(send, 500, error_body(msg, "InternalServerError", 500))
            return
        try:
            p = plan(req, self.settings.limits)
        except RequestError as exc:
            await _reply(send, exc.status, error_body(str(exc), "BadRequestError", exc.status))
            return
        self._count += 1
        rid = f"{'chatcmpl' if chat else 'cmpl'}-{self._count}"
        writer = ChunkWriter(rid, req.model, int(time.time()), chat=chat)
        gen = Generation(self.engine, p, faults, writer)
        watcher = asyncio.ensure_future(_watch_disconnect(receive, gen))
        try:
            if req.stream:
                await self._stream(send, gen, p.prompt_tokens, req)
            else:
                await self._whole(send, gen, p.prompt_tokens)
        except DroppedConnection:
            raise  # the server closes the connection mid-response
        except asyncio.CancelledError:
            gen.abort()
            raise
        finally:
            watcher.cancel()

    async def _stream(
        self, send: Send, gen: Generation, n_prompt: int, req: ChatRequest | CompletionRequest
    ) -> None:
        await gen.submit()
        await send({"type": "http.response.start", "status": 200, "headers": SSE})

        async def emit(text: str) -> None:
            await send({"type": "http.response.body", "body": text.encode(), "more_body": True})

        try:
            _, n_out, cached = await gen.run(emit)
            tail = ""
            if req.stream_options is not None and req.stream_options.include_usage:
                tail = gen.writer.usage(usage(n_prompt, n_out, cached))
        except RequestError as exc:
            tail = ChunkWriter.error(str(exc), exc.status)
        await send({"type": "http.response.body", "body": (tail + "data: [DONE]\n\n").encode()})

    async def _whole(self, send: Send, gen: Generation, n_prompt: int) -> None:
        try:
            finish, n_out, cached = await gen.run(None)
        except RequestError as exc:
            await _reply(send, exc.status, error_body(str(exc), "BadRequestError", exc.status))
            return
        content, reasoning = gen.text
        body = full_response(gen.writer, content, reasoning, finish, usage(n_prompt, n_out, cached))
        await _reply(send, 200, body)


async def _watch_disconnect(receive: Receive, gen: Generation) -> None:
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            gen.abort()
            if gen.handle is not None:
                gen.handle.queue.put_nowait(Delta(finished=True, error="client disconnected"))
            return


async def _read_body(receive: Receive) -> bytes:
    parts = []
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            break
        parts.append(msg.get("body", b""))
        if not msg.get("more_body"):
            break
    return b"".join(parts)


async def _reply(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers or JSON})
    await send({"type": "http.response.body", "body": body})


def build_emulator(
    dep: Deployment,
    *,
    served_model: str,
    options: SimOptions | None = None,
    clock: Clock | None = None,
    time_scale: float = 1.0,
    faults: Faults | None = None,
    default_output_tokens: int = 256,
) -> EmulatorApp:
    """The emulator of one replica of `dep` (LayoutError if it cannot run)."""
    replica = build_replica(dep, options, track_tokens=True)
    limits = Limits(
        max_context=dep.effective_max_context,
        block_tokens=dep.page_size_tokens,
        default_output_tokens=default_output_tokens,
        thinking_model=dep.model.arch.model_type.startswith("glm"),
    )
    settings = EmulatorSettings(served_model, limits, faults or Faults())
    engine = EmulatedEngine(replica, clock or ScaledClock(time_scale))
    return EmulatorApp(settings, engine)
