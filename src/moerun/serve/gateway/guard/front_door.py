"""The gateway's front door: uvicorn's httptools protocol with limits it lacks.

uvicorn bounds neither the request head (httptools concatenates an oversized header in
pieces, quadratic in its size: one 64 MB header stalled every client for seconds) nor the
time a client may take to send it (slowloris). This protocol, per connection:

- answers 431 and stops parsing once a request head passes `max_head_bytes`, then discards
  what the client still sends until it stops (so it reads the 431) or the header timeout;
- closes a connection whose request head is not complete `header_timeout_s` after its first
  byte (or after the connection opened), and one whose body is not complete
  `body_timeout_s` after its head (408);
- refuses connections beyond `max_connections` with a 503.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_HEAD_END = b"\r\n\r\n"


@dataclass(frozen=True, slots=True)
class DoorLimits:
    """Per-connection limits of the front door."""

    max_head_bytes: int = 64 * 1024
    header_timeout_s: float = 10.0
    body_timeout_s: float = 60.0
    max_connections: int = 8192


def _response(status: bytes, message: bytes) -> bytes:
    body = b'{"error":{"message":"' + message + b'","type":"invalid_request_error","code":null}}'
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body
    )


def _too_large(limit_bytes: int) -> bytes:
    msg = f"request head is larger than {limit_bytes} bytes".encode()
    return _response(b"431 Request Header Fields Too Large", msg)


_TIMEOUT = _response(b"408 Request Timeout", b"the request was not received in time")
_BUSY = _response(b"503 Service Unavailable", b"too many open connections; retry later")


def door_protocol(limits: DoorLimits) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol class with these limits (pass as `uvicorn.Config(http=)`)."""

    class DoorProtocol(_DoorProtocol):
        door = limits

    return DoorProtocol


class _DoorProtocol(HttpToolsProtocol):
    door: DoorLimits

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._head_bytes = 0
        self._tail = b""  # the last bytes of the head so far: its end may span two reads
        self._discarding = False
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.door.max_connections:
            self._discarding = True
            transport.write(_BUSY)
            transport.close()
            return
        self._arm(self.door.header_timeout_s)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._discarding:
            return
        if self._in_head:
            seen = self._tail + data
            end = seen.find(_HEAD_END)
            self._head_bytes += len(data) if end < 0 else end + len(_HEAD_END) - len(self._tail)
            self._tail = seen[-3:]
            if self._head_bytes > self.door.max_head_bytes:
                return self._refuse_head()
        super().data_received(data)

    def _refuse_head(self) -> None:
        """Answer 431 without parsing; keep reading (and dropping) until the client is done."""
        self._discarding = True
        self.transport.write(_too_large(self.door.max_head_bytes))
        self._arm(self.door.header_timeout_s)

    # Parser callbacks
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        if self._timer is None:
            self._arm(self.door.header_timeout_s)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        self._tail = b""
        self._arm(self.door.body_timeout_s)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        self._in_head = True
        self._head_bytes = 0
        self._tail = b""
        super().on_message_complete()

    # Timers
    def _arm(self, delay_s: float) -> None:
        self._disarm()
        self._timer = self.loop.call_later(delay_s, self._expired)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            if cycle.response_started:
                self.transport.close()
                return
            # The app waits for a body that is not coming: tell it the client is gone.
            cycle.disconnected = True
            cycle.message_event.set()
        if not self._discarding:
            self.transport.write(_TIMEOUT)
        self.transport.close()
