"""Server-sent events framing: a `text/event-stream` body split into whole events."""

from __future__ import annotations

DONE_EVENT = b"data: [DONE]\n\n"


class SseFramer:
    """Splits an event stream into events as its bytes arrive; keeps a partial event."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = b""

    @property
    def pending(self) -> bool:
        """Whether part of an event is held, waiting for its end."""
        return bool(self._buffer)

    def feed(self, chunk: bytes) -> list[bytes]:
        """The events `chunk` completes, each without its blank line (CRLF read as LF)."""
        if b"\r" in chunk:
            chunk = chunk.replace(b"\r\n", b"\n")
        data = self._buffer + chunk if self._buffer else chunk
        end = data.rfind(b"\n\n")
        if end < 0:
            self._buffer = data
            return []
        self._buffer = data[end + 2 :]
        return [event for event in data[:end].split(b"\n\n") if event]


def data_lines(event: bytes) -> list[bytes]:
    """The payloads of an event's `data:` lines, stripped."""
    if b"\n" not in event:
        return [event[5:].strip()] if event.startswith(b"data:") else []
    return [line[5:].strip() for line in event.split(b"\n") if line.startswith(b"data:")]
