"""A lean HTTP/1.1 client with keep-alive pools, for the gateway's upstream requests.

Why not httpx: on this path httpx costs ~1.3 ms of CPU per request (measured), which is the
whole per-request budget. This client is an asyncio Protocol around httptools' C parser; a
request is one `write`, a response arrives as the parser's callbacks. TCP_NODELAY is set on
every connection. Timeouts are timer handles, not tasks.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections import deque
from typing import Protocol, cast
from urllib.parse import urlsplit

import httptools

_HIGH_WATER_CHUNKS = 64  # pause reading the upstream when the client falls this far behind


class TransportError(Exception):
    """The upstream could not be reached, broke the connection, or timed out."""

    def __init__(self, message: str, *, timeout: bool = False, sent_response: bool = False):
        super().__init__(message)
        self.timeout = timeout
        # True once any response byte arrived: the backend has seen (and begun) the request.
        self.sent_response = sent_response


class Holder(Protocol):
    """Whoever may need to drop a connection mid-request (e.g. when its client leaves)."""

    conn: Connection | None
    client_gone: bool


def _expire(waiter: asyncio.Future[None], what: str) -> None:
    if not waiter.done():
        waiter.set_exception(TransportError(f"upstream timed out ({what})", timeout=True))


class Connection(asyncio.Protocol):
    """One keep-alive connection; one request at a time."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reused = False
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[None] | None = None
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: dict[bytes, bytes] = {}
        self.headers_done = False
        self.keep_alive = False
        self.complete = False
        self.got_bytes = False
        self.error: TransportError | None = None
        self.chunks: deque[bytes] = deque()
        self.paused = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses but have its methods.
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(TransportError(f"bad HTTP from upstream: {exc}", sent_response=True))
            self.close()

    def eof_received(self) -> bool | None:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.complete:
            self._fail(
                TransportError(
                    "upstream closed the connection" + (f": {exc}" if exc else ""),
                    sent_response=self.got_bytes,
                )
            )

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.lower()] = value

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        # Read now: llhttp forgets it once the message is complete.
        self.keep_alive = self._parser.should_keep_alive()
        self.headers_done = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        if len(self.chunks) > _HIGH_WATER_CHUNKS and self.transport and not self.paused:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        self.complete = True
        self._wake()

    # internals
    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _fail(self, error: TransportError) -> None:
        if self.error is None:
            self.error = error
        w = self._waiter
        if w is not None and not w.done():
            w.set_exception(error)

    async def _wait(self, timeout_s: float, what: str) -> None:
        if self.error is not None:
            raise self.error
        loop = self.pool.loop
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiter = waiter
        timer = loop.call_later(timeout_s, _expire, waiter, what)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    async def wait_headers(self, timeout_s: float) -> None:
        """Wait for the response's status line and headers."""
        while not self.headers_done:
            await self._wait(timeout_s, "waiting for response headers")

    async def next_chunk(self, timeout_s: float) -> bytes | None:
        """The next piece of the body as it arrived, or None at its end."""
        while not self.chunks:
            if self.complete:
                return None
            if self.paused and self.transport is not None:
                self.paused = False
                self.transport.resume_reading()
            await self._wait(timeout_s, "reading the response")
        return self.chunks.popleft()

    async def read_body(self, timeout_s: float) -> bytes:
        """The whole body."""
        parts = []
        while (chunk := await self.next_chunk(timeout_s)) is not None:
            parts.append(chunk)
        return b"".join(parts)

    def close(self) -> None:
        """Drop the connection (cancels the upstream request if one is running)."""
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def release(self) -> None:
        """Give the connection back for reuse if its response is fully read, else close it."""
        if self.complete and not self.closed and self.keep_alive:
            self._reset()
            self.reused = True
            self.pool.put(self)
        else:
            self.close()


class Pool:
    """Keep-alive connections to one origin (scheme, host, port)."""

    def __init__(self, base_url: str, loop: asyncio.AbstractEventLoop, max_idle: int = 256) -> None:
        parts = urlsplit(base_url)
        assert parts.hostname is not None, base_url
        self.loop = loop
        self.host = parts.hostname
        self.tls = parts.scheme == "https"
        self.port = parts.port or (443 if self.tls else 80)
        default_port = 443 if self.tls else 80
        self.host_header = self.host if self.port == default_port else f"{self.host}:{self.port}"
        self.max_idle = max_idle
        self._idle: list[Connection] = []
        self._ssl = ssl.create_default_context() if self.tls else None

    def put(self, conn: Connection) -> None:
        """Keep an idle connection."""
        if len(self._idle) < self.max_idle:
            self._idle.append(conn)
        else:
            conn.close()

    async def connect(self, timeout_s: float) -> Connection:
        """A fresh connection."""
        try:
            async with asyncio.timeout(timeout_s):
                _, proto = await self.loop.create_connection(
                    lambda: Connection(self),
                    self.host,
                    self.port,
                    ssl=self._ssl,
                    server_hostname=self.host if self.tls else None,
                )
        except TimeoutError:
            raise TransportError(
                f"connect to {self.host}:{self.port} timed out", timeout=True
            ) from None
        except OSError as exc:
            raise TransportError(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        return proto

    async def send(
        self,
        head: bytes,
        body: bytes,
        connect_timeout_s: float,
        headers_timeout_s: float,
        holder: Holder,
    ) -> Connection:
        """Send one request and wait for the response headers; `holder.conn` is the connection
        while it runs. A reused connection the server had already closed is retried once on a
        fresh one (no response byte was seen, so the server never took the request)."""
        while self._idle:
            conn = self._idle.pop()
            if conn.closed:
                continue
            try:
                return await self._exchange(conn, head, body, headers_timeout_s, holder)
            except TransportError as exc:
                if exc.sent_response or exc.timeout:
                    raise
        conn = await self.connect(connect_timeout_s)
        return await self._exchange(conn, head, body, headers_timeout_s, holder)

    async def _exchange(
        self, conn: Connection, head: bytes, body: bytes, timeout_s: float, holder: Holder
    ) -> Connection:
        assert conn.transport is not None
        holder.conn = conn
        try:
            if holder.client_gone:
                raise TransportError("the client left before the request was sent")
            conn.transport.write(head + body)
            await conn.wait_headers(timeout_s)
        except BaseException:
            conn.close()
            raise
        return conn

    def close(self) -> None:
        """Close every idle connection."""
        for conn in self._idle:
            conn.close()
        self._idle.clear()
