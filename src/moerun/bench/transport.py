"""The load generator's transport interface: one request in, one whole response out.

`Transport.send` is served by the network client (`moerun.bench.http.HttpTransport`) and by
the in-process one (`moerun.bench.asgi.AsgiTransport`) alike, as httpx's MockTransport
stands in for the network. Contract: `send` never raises for a network failure or a bad
response; it returns an `HttpResult` whose `error` says what went wrong (refused, dropped
mid-stream, timed out, malformed), with whatever events arrived before the failure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(slots=True)
class HttpResult:
    """One response: status, body or SSE events (each with its arrival time), or an error."""

    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    events: list[tuple[float, bytes]] = field(default_factory=list)
    sent_s: float = 0.0
    end_s: float = 0.0
    error: str | None = None


class Transport(Protocol):
    """Sends one request and returns the whole response; see the module docstring."""

    async def send(
        self, method: str, path: str, body: bytes | None, *, timeout_s: float | None = None
    ) -> HttpResult:
        """The response to one request (a `text/event-stream` body is split into events)."""
        ...

    async def aclose(self) -> None:
        """Close every connection."""
        ...
