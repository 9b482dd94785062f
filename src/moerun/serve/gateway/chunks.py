"""The gateway's body sink: an upstream response's chunks queued for the relay, with
back-pressure (the upstream socket stops being read while the client falls behind)."""

from __future__ import annotations

from collections import deque

from moerun.wire.client import Connection, TransportError

_HIGH_WATER_CHUNKS = 64  # pause reading the upstream when the client falls this far behind


class ChunkQueue:
    """One upstream response's body, read chunk by chunk (a `moerun.wire.client.BodySink`)."""

    def __init__(self) -> None:
        self.conn: Connection | None = None
        self.chunks: deque[bytes] = deque()
        self.paused = False

    # BodySink
    def start(self, conn: Connection) -> None:
        """The request is being written on `conn`."""
        self.conn = conn
        self.chunks.clear()
        self.paused = False

    def feed(self, data: bytes) -> None:
        """Queue a piece of the body; stop reading the socket past the high-water mark."""
        self.chunks.append(data)
        if len(self.chunks) > _HIGH_WATER_CHUNKS and not self.paused and self.conn is not None:
            self.paused = True
            self.conn.pause_reading()

    def end(self, error: TransportError | None) -> None:
        """Nothing to do: the connection wakes the reader and holds any error."""

    # the reader's side
    @property
    def complete(self) -> bool:
        """Whether the whole response has arrived."""
        return self.conn is not None and self.conn.complete

    async def next_chunk(self, timeout_s: float) -> bytes | None:
        """The next piece of the body as it arrived, or None at its end."""
        conn = self.conn
        assert conn is not None
        while not self.chunks:
            if conn.complete:
                return None
            if self.paused:
                self.paused = False
                conn.resume_reading()
            await conn.wait(timeout_s, "reading the response")
        return self.chunks.popleft()

    async def read_body(self, timeout_s: float) -> bytes:
        """The whole body."""
        parts = []
        while (chunk := await self.next_chunk(timeout_s)) is not None:
            parts.append(chunk)
        return b"".join(parts)

    def close(self) -> None:
        """Drop the connection (cancels the upstream request if it is still running)."""
        if self.conn is not None:
            self.conn.close()

    def release(self) -> None:
        """Give the connection back for reuse if the body was read to its end, else close it."""
        if self.conn is not None:
            self.conn.release()
