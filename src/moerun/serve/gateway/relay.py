"""Sending a backend's successful answer to the client: a JSON body, or an SSE stream.

Once the first stream byte is out there is no retry: a stream that breaks ends with an error
event, then `[DONE]`. The usage record is committed before the last byte in every case.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson

from moerun.serve.gateway.asgi import JSON, send_bytes, send_error
from moerun.serve.gateway.call import Call
from moerun.serve.gateway.chunks import ChunkQueue
from moerun.serve.gateway.finish import Finisher
from moerun.serve.gateway.metrics import Metrics
from moerun.serve.gateway.router import BackendState
from moerun.serve.gateway.sse import SseRelay
from moerun.serve.gateway.wire import normalise_choices, usage_counts
from moerun.wire.asgi import Send
from moerun.wire.client import TransportError
from moerun.wire.openai_error import error_body
from moerun.wire.sse import DONE_EVENT

_SSE_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
_LEDGER_DOWN = "the usage ledger is unavailable, so the answer cannot be metered"


class Relay:
    """Sends answers on to clients; holds only what that needs (ledger, metrics, clock)."""

    def __init__(
        self, finisher: Finisher, metrics: Metrics, clock: Callable[[], float], read_s: float
    ) -> None:
        self.finisher = finisher
        self.metrics = metrics
        self.clock = clock
        self.read_s = read_s

    async def json(
        self,
        call: Call,
        state: BackendState,
        data: bytes,
        server_errors: list[str],
        send: Send,
    ) -> None:
        """Normalise a non-streamed answer, commit its record, send it."""
        fin = self.finisher
        state.breaker.record_success()
        fin.attribute(server_errors, served_by=state.spec.name)
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            obj = None
        if not isinstance(obj, dict):
            rec = fin.record(call, "upstream_error", 502, None, None)
            await fin.commit(rec)
            call.stop_watching()
            await send_error(send, 502, "the backend's answer is not a JSON object", "bad_upstream")
            return await fin.account(call, rec)
        if normalise_choices(obj, "message"):
            data = orjson.dumps(obj)
        rec = fin.record(call, "ok", 200, usage_counts(obj.get("usage")), None)
        committed = await fin.commit(rec)
        call.stop_watching()
        if not committed:
            await send_error(
                send, 503, _LEDGER_DOWN, "ledger_unavailable", [(b"retry-after", b"1")]
            )
        else:
            headers = [
                (b"x-request-id", call.request_id.encode()),
                (b"x-moerun-backend", state.spec.name.encode()),
            ]
            await send_bytes(send, 200, data, JSON, headers)
        await fin.account(call, rec)

    async def stream(
        self,
        call: Call,
        state: BackendState,
        conn: ChunkQueue,
        sent_s: float,
        server_errors: list[str],
        send: Send,
    ) -> None:
        """Forward SSE events as they arrive; commit the record; then send `[DONE]`."""
        fin = self.finisher
        clock = self.clock
        headers = [
            *_SSE_HEADERS,
            (b"x-request-id", call.request_id.encode()),
            (b"x-moerun-backend", state.spec.name.encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        relay = SseRelay(call.wants_usage)
        read_s = self.read_s
        first_s: float | None = None
        broken: TransportError | None = None
        try:
            while (chunk := await conn.next_chunk(read_s)) is not None:
                out = relay.feed(chunk)
                if out:
                    if first_s is None:
                        first_s = clock()
                    try:
                        await send({"type": "http.response.body", "body": out, "more_body": True})
                    except OSError:  # some servers raise once the client is gone
                        call.client_gone = True
                        break
                if relay.done:
                    break
        except TransportError as exc:
            broken = exc
        ttft_s = None if first_s is None else first_s - call.started_s
        if first_s is not None:
            state.ttft.add(first_s - sent_s, first_s)
        if call.client_gone:
            state.breaker.release_probe()
            conn.close()
            rec = fin.record(call, "client_closed", 499, relay.usage, ttft_s, relay.num_events)
            await fin.commit(rec)
            return await fin.account(call, rec)
        if broken is not None:
            state.breaker.record_failure(clock())
            fin.attribute(server_errors, served_by=state.spec.name)
            self.metrics.error(state.spec.name, "timeout" if broken.timeout else "stream_broken")
            conn.close()
            rec = fin.record(call, "upstream_error", 200, relay.usage, ttft_s, relay.num_events)
            await fin.commit(rec)
            tail = b"data: " + error_body(
                f"the backend stream broke: {broken}", "server_error", "upstream_stream_broken"
            )
        else:
            state.breaker.record_success()
            fin.attribute(server_errors, served_by=state.spec.name)
            status = "upstream_error" if relay.error is not None else "ok"
            rec = fin.record(call, status, 200, relay.usage, ttft_s, relay.num_events)
            if await fin.commit(rec):
                tail = b""
            else:
                tail = b"data: " + error_body(_LEDGER_DOWN, "server_error", "ledger_unavailable")
        call.stop_watching()
        await send(
            {"type": "http.response.body", "body": (tail + b"\n\n" if tail else b"") + DONE_EVENT}
        )
        if broken is None:
            await _drain(conn)
        await fin.account(call, rec)


async def _drain(conn: ChunkQueue) -> None:
    """Read what is left after `[DONE]` (the chunked terminator) so the connection is reused."""
    try:
        while not conn.complete:
            if await conn.next_chunk(1.0) is None:
                break
    except TransportError:
        conn.close()
        return
    conn.release()
