"""The one HTTP/1.1 client: keep-alive connections to one origin, TLS, HTTP proxies, and a
pluggable body sink. Every outgoing connection moerun opens is opened here.

Why not httpx: on the gateway's path httpx costs ~1.3 ms of CPU per request (measured), the
whole per-request budget, and the load generator must keep 2,000 streams open while timing
each chunk to about a millisecond. A connection is an asyncio Protocol around httptools' C
parser; a request is one `write`; the response's body goes, piece by piece as the parser
de-frames it, to the `BodySink` the caller chose: the gateway's queues chunks with
back-pressure, bench's timestamps SSE events. TCP_NODELAY is set on every connection;
timeouts are timer handles, not tasks.

Proxies (`moerun.wire.proxies`): an `http://` origin is reached through an HTTP proxy with
absolute-form request targets; an `https://` origin through a CONNECT tunnel, with TLS to the
origin inside it.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from typing import Protocol, TypeVar, cast
from urllib.parse import urlsplit

import httptools

from moerun.wire.proxies import ProxyRoute

MAX_HEADER_BYTES = 64 * 1024


class TransportError(Exception):
    """The upstream could not be reached, broke the connection, or timed out."""

    def __init__(self, message: str, *, timeout: bool = False, sent_response: bool = False):
        super().__init__(message)
        self.timeout = timeout
        # True once any response byte arrived: the server has seen (and begun) the request.
        self.sent_response = sent_response


class BodySink(Protocol):
    """Where one response goes as it arrives. Contract: called on the event loop from the
    connection's callbacks, in order: `start` as the request is written (again if a stale
    keep-alive connection makes the pool retry on a fresh one); once the headers are in,
    `feed` with each de-framed piece of the body, then `end` exactly once, with None when the
    response is complete or with the error that broke it. A failure before the headers is
    raised by `Pool.send` instead. A sink must not block."""

    def start(self, conn: Connection) -> None:
        """The request is about to be written on `conn`."""
        ...

    def feed(self, data: bytes) -> None:
        """The next piece of the body."""
        ...

    def end(self, error: TransportError | None) -> None:
        """The response is complete (None) or broken."""
        ...


class Holder(Protocol):
    """Whoever may need to drop a connection mid-request (e.g. when its client leaves)."""

    conn: Connection | None
    client_gone: bool


S = TypeVar("S", bound=BodySink)


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
        self.sink: BodySink | None = None
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
        self._head_bytes = 0
        self._to_close = False  # the body runs until the server closes the connection

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses but have its methods.
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._broken(f"not an HTTP/1.x response ({exc})")
            return
        if not self.headers_done:
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEADER_BYTES:
                self._broken("response headers too large")

    def eof_received(self) -> bool | None:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.complete or self.sink is None:
            return
        if self.headers_done and self._to_close and exc is None:
            self.on_message_complete()
            return
        self._fail(
            TransportError(
                "connection closed before the response ended" + (f": {exc}" if exc else ""),
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
        h = self.headers
        self._to_close = (
            b"content-length" not in h
            and b"chunked" not in h.get(b"transfer-encoding", b"").lower()
            and self.status >= 200
            and self.status not in (204, 304)
        )
        self.headers_done = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        assert self.sink is not None
        self.sink.feed(body)
        self._wake()

    def on_message_complete(self) -> None:
        if self.complete:
            return
        self.complete = True
        assert self.sink is not None
        self.sink.end(None)
        self._wake()

    # internals
    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _broken(self, message: str) -> None:
        self._fail(TransportError(message, sent_response=True))
        self.close()

    def _fail(self, error: TransportError) -> None:
        if self.error is not None:
            return
        self.error = error
        if self.sink is not None and self.headers_done and not self.complete:
            self.sink.end(error)
        w = self._waiter
        if w is not None and not w.done():
            w.set_exception(error)

    def abort(self, error: TransportError) -> None:
        """End the running exchange with `error` (a caller's own timeout: pass timeout=True,
        so that the pool does not retry it) and drop the connection."""
        self._fail(error)
        self.close()

    async def wait(self, timeout_s: float | None, what: str) -> None:
        """Until the next thing happens on the connection (headers, body, end), or raise its
        error; TransportError(timeout=True) after `timeout_s` (None: no limit)."""
        if self.error is not None:
            raise self.error
        loop = self.pool.loop
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiter = waiter
        timer = None if timeout_s is None else loop.call_later(timeout_s, _expire, waiter, what)
        try:
            await waiter
        finally:
            if timer is not None:
                timer.cancel()
            self._waiter = None

    async def wait_headers(self, timeout_s: float | None) -> None:
        """Wait for the response's status line and headers."""
        while not self.headers_done:
            await self.wait(timeout_s, "waiting for response headers")

    def request(self, data: bytes, sink: BodySink) -> None:
        """Write one request; its response goes to `sink`."""
        assert self.transport is not None
        self.sink = sink
        sink.start(self)
        self.transport.write(data)

    def pause_reading(self) -> None:
        """Stop reading from the socket (the sink's reader fell behind)."""
        if self.transport is not None and not self.closed:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        """Read from the socket again."""
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    def close(self) -> None:
        """Drop the connection (cancels the upstream request if one is running)."""
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def release(self) -> None:
        """Give the connection back for reuse if its response is fully read, else close it."""
        if self.complete and not self.closed and self.keep_alive:
            self._reset()
            self.sink = None
            self.reused = True
            self.pool.put(self)
        else:
            self.close()


class _Tunnel(asyncio.Protocol):
    """The CONNECT exchange with a proxy, before TLS to the origin starts inside it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.transport: asyncio.Transport | None = None
        self.answer = bytearray()
        self.done: asyncio.Future[int] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.answer += data
        end = self.answer.find(b"\r\n\r\n")
        if end >= 0 and not self.done.done():
            line = bytes(self.answer[: self.answer.find(b"\r\n")]).split(b" ", 2)
            status = int(line[1]) if len(line) > 1 and line[1].isdigit() else 0
            self.done.set_result(status)
        elif len(self.answer) > MAX_HEADER_BYTES and not self.done.done():
            self.done.set_result(0)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(0)


class Pool:
    """Keep-alive connections to one origin (scheme, host, port), directly or via a proxy."""

    def __init__(
        self,
        base_url: str,
        loop: asyncio.AbstractEventLoop,
        *,
        proxy: ProxyRoute | None = None,
        ssl_context: ssl.SSLContext | None = None,
        max_idle: int = 256,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http:// or https:// URL, got {base_url!r}")
        self.loop = loop
        self.host = parts.hostname
        self.tls = parts.scheme == "https"
        default_port = 443 if self.tls else 80
        self.port = parts.port or default_port
        self.host_header = self.host if self.port == default_port else f"{self.host}:{self.port}"
        self.origin = f"{parts.scheme}://{self.host_header}"
        self.proxy = proxy
        self.max_idle = max_idle
        self.num_opened = 0
        self._idle: list[Connection] = []
        self._ssl = (ssl_context or ssl.create_default_context()) if self.tls else None

    def head(self, method: str, path: str) -> str:
        """A request's first lines: request line, Host, and Proxy-Authorization when a plain
        HTTP proxy forwards it. The caller adds its headers and the blank line."""
        forwarded = self.proxy is not None and not self.tls
        target = self.origin + path if forwarded else path
        head = f"{method} {target} HTTP/1.1\r\nhost: {self.host_header}\r\n"
        if forwarded and self.proxy is not None and self.proxy.authorization:
            head += f"proxy-authorization: {self.proxy.authorization}\r\n"
        return head

    def put(self, conn: Connection) -> None:
        """Keep an idle connection."""
        if len(self._idle) < self.max_idle:
            self._idle.append(conn)
        else:
            conn.close()

    async def connect(self, timeout_s: float | None) -> Connection:
        """A fresh connection (through the proxy, if there is one)."""
        proxy = self.proxy
        host, port = (proxy.host, proxy.port) if proxy is not None else (self.host, self.port)
        try:
            async with asyncio.timeout(timeout_s):
                if proxy is not None and self.tls:
                    conn = await self._tunnel(proxy)
                else:
                    _, conn = await self.loop.create_connection(
                        lambda: Connection(self),
                        host,
                        port,
                        ssl=self._ssl,
                        server_hostname=self.host if self.tls else None,
                    )
        except TimeoutError:
            raise TransportError(f"connect to {host}:{port} timed out", timeout=True) from None
        except (OSError, ssl.SSLError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise TransportError(f"cannot connect to {host}:{port}: {reason}") from exc
        self.num_opened += 1
        return conn

    async def _tunnel(self, proxy: ProxyRoute) -> Connection:
        """CONNECT to the origin through `proxy`, then TLS to the origin inside the tunnel."""
        raw, tunnel = await self.loop.create_connection(
            lambda: _Tunnel(self.loop), proxy.host, proxy.port
        )
        try:
            auth = f"proxy-authorization: {proxy.authorization}\r\n" if proxy.authorization else ""
            target = f"{self.host}:{self.port}"
            raw.write(f"CONNECT {target} HTTP/1.1\r\nhost: {target}\r\n{auth}\r\n".encode())
            status = await tunnel.done
            if not 200 <= status < 300:
                why = f"answered {status}" if status else "closed the tunnel"
                raise TransportError(
                    f"cannot connect to {target}: proxy {proxy.host}:{proxy.port} {why}"
                )
            conn = Connection(self)
            tls = await self.loop.start_tls(raw, conn, self._ssl, server_hostname=self.host)  # type: ignore[arg-type]
            if tls is None:  # pragma: no cover - only when the loop is closing
                raise TransportError(f"cannot connect to {target}: TLS did not start")
            conn.connection_made(tls)
            return conn
        except BaseException:
            raw.abort()
            raise

    async def send(
        self,
        head: bytes,
        body: bytes,
        sink: S,
        connect_timeout_s: float | None,
        headers_timeout_s: float | None,
        holder: Holder | None = None,
    ) -> Connection:
        """Send one request, its body going to `sink`, and wait for the response headers;
        `holder.conn` is the connection while it runs. A reused connection the server had
        already closed is retried once on a fresh one (no response byte was seen, so the
        server never took the request)."""
        while self._idle:
            conn = self._idle.pop()
            if conn.closed:
                continue
            try:
                return await self._exchange(conn, head + body, sink, headers_timeout_s, holder)
            except TransportError as exc:
                if exc.sent_response or exc.timeout:
                    raise
        conn = await self.connect(connect_timeout_s)
        return await self._exchange(conn, head + body, sink, headers_timeout_s, holder)

    async def _exchange(
        self,
        conn: Connection,
        data: bytes,
        sink: BodySink,
        timeout_s: float | None,
        holder: Holder | None,
    ) -> Connection:
        if holder is not None:
            holder.conn = conn
        try:
            if holder is not None and holder.client_gone:
                raise TransportError("the client left before the request was sent")
            conn.request(data, sink)
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
