"""The proxied request, front to back: key, body, model, policy, limits, routing, attempts.

Retries happen only before the first byte reaches the client; every attempt goes to a
backend from the key's policy-filtered list. A 4xx caused by the request is returned as is
(normalised, credentials and addresses redacted) and never held against the backend; a
401/403/404 is the backend's misconfiguration: it is marked and the next backend is asked.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import random
from collections.abc import Callable
from typing import Any

import orjson

from moerun.core.traffic.circuit import (
    CLIENT_ERROR,
    MISCONFIGURED,
    OK,
    THROTTLED,
    backoff_s,
    classify,
)
from moerun.core.traffic.metering import estimate_tokens
from moerun.errors import StoreError
from moerun.serve.gateway.asgi import BodyTooLarge, ClientGone, Refusal, read_body
from moerun.serve.gateway.call import Call
from moerun.serve.gateway.chunks import ChunkQueue
from moerun.serve.gateway.config import GatewayConfig, KeySpec
from moerun.serve.gateway.finish import Finisher
from moerun.serve.gateway.guard.redact import redact
from moerun.serve.gateway.guard.validate import Invalid, check_request
from moerun.serve.gateway.limits import BUDGET, Limits, max_cost_usd
from moerun.serve.gateway.metrics import Metrics
from moerun.serve.gateway.relay import Relay
from moerun.serve.gateway.router import BackendState, Router
from moerun.serve.gateway.schema import TracingEntry
from moerun.serve.gateway.tracing import Tracing, valid_traceparent
from moerun.wire.asgi import Receive, Scope, Send
from moerun.wire.client import TransportError
from moerun.wire.openai_error import error_body

log = logging.getLogger("moerun.gateway")
DEFAULT_OUTPUT_TOKENS = 256  # expected output when the request sets no max_tokens


def routing_text(req: dict[str, Any], endpoint: str) -> bytes:
    """What the prefix cache sees first: tool definitions and messages, or the prompt."""
    if endpoint == "completions":
        prompt = req.get("prompt")
        return prompt.encode() if isinstance(prompt, str) else orjson.dumps(prompt)
    tools = req.get("tools")
    messages = orjson.dumps(req.get("messages"))
    return orjson.dumps(tools) + messages if tools else messages


class Proxy:
    """Handles POST /v1/chat/completions and /v1/completions."""

    def __init__(
        self,
        config: GatewayConfig,
        router: Router,
        limits: Limits,
        metrics: Metrics,
        finisher: Finisher,
        clock: Callable[[], float],
        wall: Callable[[], float],
        rng: random.Random,
        tracing: Tracing | None = None,
    ) -> None:
        self.config = config
        self.tracing = tracing or Tracing(TracingEntry())
        self.settings = config.settings
        self.router = router
        self.limits = limits
        self.metrics = metrics
        self.finisher = finisher
        self.clock = clock
        self.wall = wall
        self.rng = rng
        self.relay = Relay(finisher, metrics, clock, self.settings.timeouts.read_s)
        self.session_header = self.settings.routing.session_header.lower().encode()
        self.max_session_bytes = self.settings.routing.max_session_id_bytes
        self.static_keys = {k.digest: k for k in config.keys or ()}
        # None: no authentication. Rebuilt (one atomic swap) when the live keys change.
        self.keys = dict(self.static_keys) if config.authenticates else None

    def set_live_keys(self, keys: list[KeySpec]) -> None:
        """Serve these live keys beside the YAML keys (a YAML key wins a digest clash)."""
        self.keys = {**{k.digest: k for k in keys}, **self.static_keys}

    def authenticate(self, authorization: bytes | None) -> KeySpec | None:
        """The key a `Bearer` token belongs to (SHA-256 compared in constant time)."""
        if authorization is None or self.keys is None:
            return None
        scheme, _, token = authorization.partition(b" ")
        if scheme.lower() != b"bearer" or not token:
            return None
        digest = hashlib.sha256(token.strip()).digest()
        key = self.keys.get(digest)
        if key is None or not hmac.compare_digest(key.digest, digest):
            return None
        return key

    async def handle(self, scope: Scope, receive: Receive, send: Send, endpoint: str) -> None:
        """Serve one completion request."""
        call = Call("req_" + os.urandom(12).hex(), self.clock(), endpoint)
        try:
            req, allowed, session = await self._admit(call, scope, receive)
            text = routing_text(req, endpoint)
            call.num_prompt_chars = len(text)
            max_out = req.get("max_tokens") or req.get("max_completion_tokens")
            max_out = max_out if isinstance(max_out, int) and max_out > 0 else None
            if call.key is not None and _limited(call.key):
                await self._check_limits(call, allowed, estimate_tokens(len(text)), max_out)
        except Refusal as refusal:
            return await self.finisher.reject(call, send, refusal)
        except ClientGone:
            return None
        call.span = self.tracing.start(endpoint, req, call.traceparent)
        order, blocks = self.router.order(
            allowed,
            text,
            session,
            estimate_tokens(len(text)),
            max_out or DEFAULT_OUTPUT_TOKENS,
            self.clock(),
        )
        call.watch_disconnect(receive)
        await self._attempts(call, req, order, blocks, session, send)

    async def _admit(
        self, call: Call, scope: Scope, receive: Receive
    ) -> tuple[dict[str, Any], tuple[str, ...], str | None]:
        """Key, body, model, policy and limits; a Refusal says why not."""
        auth = length = session = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                auth = value
            elif name == b"content-length":
                length = value
            elif name == self.session_header:
                session = value.decode("latin-1")
            elif name == b"traceparent":
                call.traceparent = valid_traceparent(value)
        if self.keys is not None:
            call.key = self.authenticate(auth)
            if call.key is None:
                what = "missing" if auth is None else "invalid"
                msg = f"{what} API key; send `Authorization: Bearer <key>`"
                raise Refusal(401, msg, "invalid_api_key")
        if session is not None and len(session) > self.max_session_bytes:
            header = self.settings.routing.session_header
            msg = f"`{header}` is longer than {self.max_session_bytes} bytes"
            raise Refusal(400, msg, "session_id_too_long")
        limit = self.settings.server.max_body_bytes
        try:
            body = await read_body(receive, limit, length)
        except BodyTooLarge:
            msg = f"request body is larger than {limit} bytes"
            raise Refusal(413, msg, "request_too_large") from None
        try:
            req = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise Refusal(400, f"request body is not valid JSON: {exc}", "invalid_json") from None
        if not isinstance(req, dict):
            raise Refusal(400, "request body must be a JSON object", "invalid_json")
        model = req.get("model")
        if not isinstance(model, str) or not model:
            raise Refusal(400, "`model` is required", "missing_model", param="model")
        call.model = model
        if call.key is not None and call.key.models is not None and model not in call.key.models:
            msg = f"key `{call.key.name}` may not use `{model}`; it may use: " + ", ".join(
                call.key.models
            )
            raise Refusal(403, msg, "model_not_allowed", param="model")
        allowed = self.router.allowed.get((call.key.name if call.key else None, model))
        if allowed is None:
            msg = f"the model `{model}` does not exist or you do not have access to it"
            raise Refusal(404, msg, "model_not_found", param="model")
        if not allowed:
            msg = f"no backend for `{model}` satisfies the policy of key `{call.key_name}`"
            raise Refusal(403, msg, "no_compliant_backend")
        # The two fields the gateway acts on must mean the same to it and to the backend.
        stream, options = req.get("stream"), req.get("stream_options")
        if stream is not None and not isinstance(stream, bool):
            raise Refusal(400, "`stream` must be true or false", "invalid_type", param="stream")
        if options is not None and not isinstance(options, dict):
            msg = "`stream_options` must be an object"
            raise Refusal(400, msg, "invalid_type", param="stream_options")
        try:
            check_request(req, call.endpoint)
        except Invalid as bad:
            raise Refusal(400, bad.message, "invalid_value", param=bad.param) from None
        call.stream = stream is True
        if call.stream:
            options = dict(options or {})
            call.wants_usage = options.get("include_usage") is True
            options["include_usage"] = True  # metering needs the usage chunk
            req["stream_options"] = options
        return req, allowed, session

    async def _check_limits(
        self, call: Call, allowed: tuple[str, ...], num_prompt_tokens: int, max_out: int | None
    ) -> None:
        key = call.key
        assert key is not None
        cost = 0.0
        if key.budget_usd is not None:
            specs = [self.router.states[name].spec for name in allowed]
            # Without max_tokens or a backend cap the reservation assumes the routing default.
            caps = [max_out or s.max_output_tokens or DEFAULT_OUTPUT_TOKENS for s in specs]
            limits = zip((s.prices for s in specs), caps, strict=True)
            cost = max_cost_usd(limits, num_prompt_tokens)
        try:
            reason, call.hold = await self.limits.admit(key, self.wall(), cost)
        except StoreError as exc:
            raise Refusal(503, str(exc), "limits_unavailable", [(b"retry-after", b"1")]) from exc
        if reason == BUDGET:
            msg = f"key `{key.name}` has spent its {key.budget_period}ly budget"
            raise Refusal(429, msg, "insufficient_quota", [(b"retry-after", b"3600")])
        if reason is not None:
            msg = f"key `{key.name}` is over its {reason}-per-minute limit"
            raise Refusal(429, msg, "rate_limit_exceeded", [(b"retry-after", b"60")])

    def _misconfigured(self, state: BackendState, status: int) -> None:
        """A 401/403/404 from a backend: its key, URL or model is wrong. Mark it, say so once."""
        state.breaker.record_failure(self.clock())
        self.metrics.error(state.spec.name, f"upstream_{status}")
        if state.misconfigured_status != status:
            log.error(
                "backend %s answered HTTP %d: check its api_key_env, base_url and model; "
                "failing over to the next allowed backend",
                state.spec.name,
                status,
            )
        state.misconfigured_status = status

    async def _attempts(
        self,
        call: Call,
        req: dict[str, Any],
        order: list[str],
        blocks: tuple[int, ...],
        session: str | None,
        send: Send,
    ) -> None:
        t = self.settings.timeouts
        r = self.settings.retries
        excluded: set[str] = set()  # transport failures: not asked again for this request
        server_errors: list[str] = []  # 5xx answers, held against a backend only later
        last: tuple[int, bytes, bytes | None] = (
            503,
            error_body("no backend is available", "server_error", "no_available_backend"),
            b"1",
        )
        payloads: dict[str, bytes] = {}
        tp = self.tracing.traceparent(call.span, call.traceparent)
        trace_line = b"traceparent: " + tp + b"\r\n" if tp else b""
        pos = 0
        for attempt in range(r.max_attempts):
            name = None
            for _ in range(len(order)):
                candidate = order[pos % len(order)]
                pos += 1
                if candidate not in excluded:
                    name = candidate
                    break
            if name is None:
                break
            if attempt:
                self.metrics.retry(name)
                await asyncio.sleep(
                    backoff_s(attempt - 1, self.rng, r.backoff_base_s, cap_s=r.backoff_cap_s)
                )
            if call.client_gone:
                return await self.finisher.client_left(call)
            state = self.router.states[name]
            call.backend = name
            call.num_attempts += 1
            target = state.spec.model or call.model
            payload = payloads.get(target)
            if payload is None:
                req["model"] = target
                payload = payloads[target] = orjson.dumps(req)
            head = (
                state.heads[call.endpoint]
                + trace_line
                + b"content-length: %d\r\n\r\n" % len(payload)
            )
            sent_s = self.clock()
            state.breaker.on_attempt(sent_s)
            self.router.chose(name, blocks, session, sent_s)
            state.in_flight += 1
            try:
                body = ChunkQueue()
                conn = await state.pool.send(
                    head,
                    payload,
                    body,
                    t.connect_s,
                    t.first_byte_s if call.stream else t.total_s,
                    call,
                )
                if conn.status == 200:
                    state.misconfigured_status = None
                    if call.stream:
                        await self.relay.stream(call, state, body, sent_s, server_errors, send)
                        return None
                    data = await body.read_body(t.read_s)
                    conn.release()
                    await self.relay.json(call, state, data, server_errors, send)
                    return None
                status, retry_after = conn.status, conn.headers.get(b"retry-after")
                err = await body.read_body(t.read_s)
                conn.release()
            except TransportError as exc:
                if call.client_gone:
                    state.breaker.release_probe()
                    return await self.finisher.client_left(call)
                state.breaker.record_failure(self.clock())
                excluded.add(name)
                self.metrics.error(name, "timeout" if exc.timeout else "transport")
                status = 504 if exc.timeout else 502
                code = "upstream_timeout" if exc.timeout else "upstream_unavailable"
                last = (status, error_body(redact(str(exc)), "server_error", code), None)
                continue
            finally:
                state.in_flight -= 1
            outcome = classify(status)
            if outcome == MISCONFIGURED:
                self._misconfigured(state, status)
                excluded.add(name)
                last = (502, _MISCONFIGURED_BODY, None)
                continue
            envelope = self.finisher.upstream_error(status, err)
            if outcome in (CLIENT_ERROR, OK):
                state.breaker.record_success()  # it answered; the request is at fault
                self.finisher.attribute(server_errors, served_by=name)
                return await self.finisher.fail(call, send, status, envelope, None)
            state.breaker.release_probe()
            self.metrics.error(name, "throttled" if outcome == THROTTLED else "server_error")
            if outcome != THROTTLED:
                server_errors.append(name)
            last = (status, envelope, retry_after)
        self.finisher.attribute(server_errors, served_by=None)
        await self.finisher.fail(call, send, *last)


_MISCONFIGURED_BODY = error_body(
    "no backend could serve the request: the backends asked refused the gateway's "
    "credentials, base URL or model name (see the gateway's log)",
    "server_error",
    "upstream_misconfigured",
)


def _limited(key: KeySpec) -> bool:
    return (
        key.requests_per_minute is not None
        or key.tokens_per_minute is not None
        or key.budget_usd is not None
    )
