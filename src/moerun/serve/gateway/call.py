"""One proxied request in flight: what the gateway knows about it and how it ends."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson

from moerun.core.traffic.metering import UsageRecord
from moerun.serve.gateway.config import KeySpec
from moerun.serve.gateway.limits import Hold
from moerun.wire.asgi import Receive
from moerun.wire.client import Connection

access_log = logging.getLogger("moerun.gateway.access")
ANONYMOUS = "-"


class Call:
    """Mutable state of one request (no prompt contents are kept beyond its size)."""

    __slots__ = (
        "backend",
        "client_gone",
        "conn",
        "endpoint",
        "finished",
        "hold",
        "key",
        "model",
        "num_attempts",
        "num_prompt_chars",
        "request_id",
        "span",
        "started_s",
        "stream",
        "traceparent",
        "wants_usage",
        "watcher",
    )

    def __init__(self, request_id: str, started_s: float, endpoint: str) -> None:
        self.request_id = request_id
        self.started_s = started_s
        self.endpoint = endpoint
        self.key: KeySpec | None = None
        self.hold: Hold | None = None  # the budget reservation made at admission
        self.model = ""
        self.stream = False
        self.wants_usage = False
        self.num_prompt_chars = 0
        self.backend = ANONYMOUS
        self.num_attempts = 0
        self.conn: Connection | None = None
        self.client_gone = False
        self.finished = False
        self.watcher: asyncio.Task[None] | None = None
        self.traceparent: bytes | None = None  # the client's W3C trace context, if valid
        self.span: Any = None  # an OpenTelemetry span when tracing is on

    @property
    def key_name(self) -> str:
        """The key's name, or "-" without authentication."""
        return self.key.name if self.key is not None else ANONYMOUS

    def watch_disconnect(self, receive: Receive) -> None:
        """Start watching for the client leaving; if it does, drop the upstream request."""
        self.watcher = asyncio.get_running_loop().create_task(self._watch(receive))

    async def _watch(self, receive: Receive) -> None:
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                break
        if not self.finished:
            self.client_gone = True
            if self.conn is not None:
                self.conn.close()

    def stop_watching(self) -> None:
        """Mark the response finished: the disconnect the server reports once the response is
        complete is then ignored, and the watcher ends on its own."""
        self.finished = True


def log_access(call: Call, rec: UsageRecord) -> None:
    """One structured access-log line (no prompt or completion text)."""
    if not access_log.isEnabledFor(logging.INFO):
        return
    access_log.info(
        orjson.dumps(
            {
                "request_id": rec.request_id,
                "key": rec.key_name,
                "model": rec.model,
                "backend": rec.backend,
                "endpoint": rec.endpoint,
                "stream": rec.stream,
                "status": rec.status,
                "http_status": rec.http_status,
                "input_tokens": rec.num_input_tokens,
                "cached_tokens": rec.num_cached_tokens,
                "output_tokens": rec.num_output_tokens,
                "cost_usd": rec.cost_usd,
                "ttft_ms": rec.ttft_ms,
                "duration_ms": rec.duration_ms,
                "attempts": call.num_attempts,
            }
        ).decode()
    )


def log_refusal(call: Call, http_status: int, code: str) -> None:
    """One access-log line for a request refused before any backend was asked."""
    if not access_log.isEnabledFor(logging.INFO):
        return
    access_log.info(
        orjson.dumps(
            {
                "request_id": call.request_id,
                "key": call.key_name,
                "model": call.model or None,
                "endpoint": call.endpoint,
                "status": "refused",
                "http_status": http_status,
                "code": code,
            }
        ).decode()
    )
