"""How a request ends: its usage record committed, limits charged, metrics and access log.

`commit` runs before the last byte goes to the client, so a completed request always has its
record; `account` (limits, metrics, log) runs after, off the latency path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from moerun.core.traffic.metering import Prices, UsageRecord, estimate_tokens
from moerun.errors import StoreError
from moerun.serve.gateway.asgi import Refusal, send_bytes, send_error
from moerun.serve.gateway.call import ANONYMOUS, Call, log_access, log_refusal
from moerun.serve.gateway.guard.redact import redact
from moerun.serve.gateway.limits import Limits
from moerun.serve.gateway.metrics import Metrics
from moerun.serve.gateway.router import Router
from moerun.serve.gateway.tracing import Tracing
from moerun.serve.gateway.wire import normalise_error
from moerun.store.writer import Ledger
from moerun.wire.asgi import Send

log = logging.getLogger("moerun.gateway")
_FREE = Prices()
CLIENT_CLOSED = 499  # nginx's status for a client that left; never sent


class Finisher:
    """Writes records and counts outcomes for the proxy."""

    def __init__(
        self,
        router: Router,
        ledger: Ledger,
        limits: Limits,
        metrics: Metrics,
        clock: Callable[[], float],
        wall: Callable[[], float],
        tracing: Tracing | None = None,
    ) -> None:
        self.router = router
        self.tracing = tracing
        self.ledger = ledger
        self.limits = limits
        self.metrics = metrics
        self.clock = clock
        self.wall = wall
        self.secrets = tuple(s.spec.api_key for s in router.states.values() if s.spec.api_key)

    def record(
        self,
        call: Call,
        status: str,
        http_status: int,
        tokens: tuple[int, int, int] | None,
        ttft_s: float | None,
        num_output_chunks: int = 0,
    ) -> UsageRecord:
        """The usage record of a finished request (tokens estimated if the backend gave none)."""
        if tokens is None:
            tokens = (estimate_tokens(call.num_prompt_chars), 0, num_output_chunks)
        state = self.router.states.get(call.backend)
        prices = state.spec.prices if state is not None else _FREE
        return UsageRecord(
            request_id=call.request_id,
            created_at_s=self.wall(),
            key_name=call.key_name,
            backend=call.backend,
            model=call.model,
            endpoint=call.endpoint,
            stream=call.stream,
            status=status,
            http_status=http_status,
            num_input_tokens=tokens[0],
            num_cached_tokens=tokens[1],
            num_output_tokens=tokens[2],
            cost_usd=prices.cost_usd(*tokens),
            ttft_ms=None if ttft_s is None else ttft_s * 1000.0,
            duration_ms=(self.clock() - call.started_s) * 1000.0,
        )

    async def commit(self, rec: UsageRecord) -> bool:
        """Commit the record; False (and logged) if the ledger failed."""
        try:
            await self.ledger.record(rec)
        except StoreError as exc:
            self.metrics.error(rec.backend, "ledger")
            log.error("usage ledger write failed for %s: %s", rec.request_id, exc)
            return False
        return True

    async def account(self, call: Call, rec: UsageRecord) -> None:
        """Charge limits, count metrics, write the access log."""
        tokens = (rec.num_input_tokens, rec.num_cached_tokens, rec.num_output_tokens)
        if call.key is not None:
            try:
                await self.limits.charge(
                    call.key, tokens[0] + tokens[2], rec.cost_usd, rec.created_at_s, call.hold
                )
            except StoreError as exc:
                log.error("could not charge limits for %s: %s", rec.request_id, exc)
        self.metrics.finished(
            rec.model,
            rec.backend,
            rec.key_name,
            rec.status,
            tokens,
            rec.cost_usd,
            None if rec.ttft_ms is None else rec.ttft_ms / 1000.0,
            rec.duration_ms / 1000.0,
        )
        log_access(call, rec)
        if self.tracing is not None and call.span is not None:
            state = self.router.states.get(call.backend)
            target = state.spec.model if state is not None else None
            self.tracing.finish(call.span, rec, target or call.model, call.num_attempts)

    def upstream_error(self, status: int, body: bytes) -> bytes:
        """A backend's error body in the gateway's envelope, credentials and addresses
        (including every backend's API key) redacted."""
        text = redact(body.decode("utf-8", "replace"), self.secrets)
        return normalise_error(status, text.encode())

    def attribute(self, server_errors: list[str], served_by: str | None) -> None:
        """Hold 5xx answers against backends only when the request itself was not the cause:
        another backend served it, or only one backend was ever asked."""
        blamed = set(server_errors) - {served_by} if served_by else set(server_errors)
        if served_by is None and len(blamed) > 1:
            return  # every backend failed this request: the request is the likely cause
        now = self.clock()
        for name in blamed:
            self.router.states[name].breaker.record_failure(now)

    async def fail(
        self, call: Call, send: Send, status: int, envelope: bytes, retry_after: bytes | None
    ) -> None:
        """Answer with an error after attempts; the record says so."""
        rec = self.record(call, "error", status, (0, 0, 0), None)
        await self.commit(rec)
        headers = [(b"x-request-id", call.request_id.encode())]
        if status in (429, 503):
            headers.append((b"retry-after", retry_after or b"1"))
        call.stop_watching()
        await send_bytes(send, status, envelope, headers=headers)
        await self.account(call, rec)

    async def reject(self, call: Call, send: Send, refusal: Refusal) -> None:
        """Refuse before any backend is asked (bad key, body, model, policy, limits)."""
        headers = [(b"x-request-id", call.request_id.encode()), *(refusal.headers or ())]
        await send_error(
            send, refusal.status, refusal.message, refusal.code, headers, refusal.param
        )
        self.metrics.error(ANONYMOUS, f"refused_{refusal.code}")
        log_refusal(call, refusal.status, refusal.code)

    async def client_left(self, call: Call) -> None:
        """The client disconnected before an answer: record it, send nothing."""
        call.stop_watching()
        rec = self.record(call, "client_closed", CLIENT_CLOSED, (0, 0, 0), None)
        await self.commit(rec)
        await self.account(call, rec)
