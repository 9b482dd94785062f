"""Relaying a backend's SSE stream: event by event, as it arrives, normalised on the way.

Bytes pass through untouched unless an event needs a change: a `reasoning` delta is renamed
to `reasoning_content`, the usage the gateway asked for on the client's behalf is removed,
and an error event is put in the gateway's envelope. Only events whose bytes mention one of
those keys are parsed, so a plain content chunk costs a few substring checks.
"""

from __future__ import annotations

from typing import Any

import orjson

from moerun.serve.gateway.wire import normalise_choices, normalise_error, usage_counts
from moerun.wire.sse import SseFramer


class SseRelay:
    """State of one relayed stream; `feed` returns the bytes to forward now."""

    def __init__(self, client_wants_usage: bool) -> None:
        self.client_wants_usage = client_wants_usage
        self.done = False
        self.usage: tuple[int, int, int] | None = None
        self.num_events = 0
        self.num_chars = 0
        self.error: bytes | None = None
        self._framer = SseFramer()

    def feed(self, chunk: bytes) -> bytes:
        """Take the next piece of the upstream body; return whole events to forward."""
        if self.done:
            return b""
        out: list[bytes] = []
        for event in self._framer.feed(chunk):
            forwarded = self._event(event)
            if forwarded is not None:
                out.append(forwarded)
            if self.done:
                break
        return b"".join(out)

    def _event(self, event: bytes) -> bytes | None:
        if not event.startswith(b"data:"):
            return event + b"\n\n"  # comments (": ping"), event/id lines: pass through
        payload = event[5:].lstrip(b" ")
        if payload == b"[DONE]":
            self.done = True
            return None  # sent by the gateway once the ledger has the record
        self.num_events += 1
        self.num_chars += len(payload)
        if not (b'"usage"' in payload or b'"reasoning"' in payload or b'"error"' in payload):
            return event + b"\n\n"
        try:
            obj: Any = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return event + b"\n\n"
        if not isinstance(obj, dict):
            return event + b"\n\n"
        if "error" in obj and "choices" not in obj:
            self.error = normalise_error(500, payload)
            return b"data: " + self.error + b"\n\n"
        changed = normalise_choices(obj, "delta")
        counts = usage_counts(obj.get("usage"))
        if counts is not None:
            self.usage = counts
            if not self.client_wants_usage:
                if not obj.get("choices"):
                    return None  # the usage-only chunk the client did not ask for
                obj.pop("usage")
                changed = True
        if not changed:
            return event + b"\n\n"
        return b"data: " + orjson.dumps(obj) + b"\n\n"
