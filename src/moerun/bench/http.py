"""A lean HTTP/1.1 client on asyncio protocols, built to time streams, not to be general.

Why not httpx: the load generator must keep 2,000 streams open and 1,000 short requests a
second on two cores while timing every chunk to about a millisecond, and httpx's pool manages
tens of requests a second at 256 streams here (benchmarks/bench_loadgen.py measures both;
aiohttp, not measured, would add a dependency for the design below). A chunk's arrival time
is read in `data_received`, as the event loop hands the bytes over; the request's coroutine
wakes once per response, not once per chunk; the usual one-event chunk takes a fast path, and
SSE payloads are parsed as JSON only after the response ends.

It implements `moerun.bench.transport.Transport`.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from typing import cast
from urllib.parse import urlsplit

from moerun.bench.transport import HttpResult, SseSplitter

MAX_HEADER_BYTES = 64 * 1024


class _Exchange:
    """Parser state for one response on a connection."""

    __slots__ = (
        "chunk_left",
        "chunked",
        "done",
        "future",
        "got_bytes",
        "length",
        "result",
        "sse",
        "state",
    )

    def __init__(self, future: asyncio.Future[HttpResult], result: HttpResult) -> None:
        self.future = future
        self.result = result
        self.chunked = False
        self.length: int | None = None  # content-length; None with chunked or read-to-close
        self.chunk_left = 0  # bytes left in the current chunk
        self.state = "size"  # chunked framing: size line, data, CRLF after data, trailer
        self.sse = False
        self.done = False
        self.got_bytes = False


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection carrying one exchange at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop, now: Callable[[], float]) -> None:
        self.loop = loop
        self.now = now
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.keep_alive = True
        self.exchange: _Exchange | None = None
        self.head = bytearray()
        self.buf = bytearray()  # the de-framed body (not SSE)
        self.sse = SseSplitter()
        self.raw = bytearray()  # framed bytes not yet de-chunked
        self.in_body = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        ex = self.exchange
        if ex is None or ex.done:
            return
        if self.in_body and not ex.chunked and ex.length is None:
            self._body_bytes(bytes(self.raw), self.now())
            self._finish(None)
        else:
            self._finish("connection closed before the response ended")

    def start(self, request: bytes, ex: _Exchange) -> None:
        assert self.transport is not None
        self.exchange = ex
        self.head.clear()
        self.buf.clear()
        self.sse = SseSplitter()
        self.raw.clear()
        self.in_body = False
        ex.result.sent_s = self.now()
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        now = self.now()
        ex = self.exchange
        if ex is None or ex.done:
            return
        ex.got_bytes = True
        if not self.in_body:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                if len(self.head) > MAX_HEADER_BYTES:
                    self.fail("response headers too large")
                return
            rest = bytes(self.head[end + 4 :])
            if not self._parse_head(bytes(self.head[:end]), ex):
                return
            self.in_body = True
            data = rest
            if ex.length == 0 and not ex.chunked:
                self._finish(None)
                return
        if data and not (ex.sse and ex.chunked and self._one_event(ex, data, now)):
            self.raw += data
            self._drain(ex, now)

    def _one_event(self, ex: _Exchange, data: bytes, now: float) -> bool:
        """The common case, taken without the general parser: `data` is exactly one whole
        chunk holding exactly one one-line SSE event, with nothing buffered before it."""
        if self.raw or ex.state != "size" or self.sse.buf or not data.endswith(b"\n\n\r\n"):
            return False
        eol = data.find(b"\r\n")
        try:
            size = int(data[:eol], 16)
        except ValueError:
            return False
        if eol + 4 + size != len(data) or not data.startswith(b"data:", eol + 2):
            return False
        if data.count(b"\n", eol + 2) != 3:  # the line, the blank line, the chunk's CRLF
            return False
        ex.result.events.append((now, data[eol + 7 : -4].strip()))
        return True

    def _parse_head(self, head: bytes, ex: _Exchange) -> bool:
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            self.fail(f"not an HTTP/1.x response: {lines[0][:80]!r}")
            return False
        res = ex.result
        res.status = int(parts[1])
        for line in lines[1:]:
            name, _, value = line.partition(":")
            res.headers[name.strip().lower()] = value.strip()
        h = res.headers
        ex.chunked = "chunked" in h.get("transfer-encoding", "").lower()
        if not ex.chunked and "content-length" in h:
            try:
                ex.length = int(h["content-length"])
            except ValueError:
                self.fail("bad content-length")
                return False
        ex.sse = h.get("content-type", "").startswith("text/event-stream")
        conn = h.get("connection", "").lower()
        if conn == "close" or parts[0] == "HTTP/1.0" or (not ex.chunked and ex.length is None):
            self.keep_alive = False
        return True

    def _drain(self, ex: _Exchange, now: float) -> None:
        raw = self.raw
        if not ex.chunked:
            if ex.length is None:
                if ex.sse:
                    self._body_bytes(bytes(raw), now)
                    raw.clear()
                return  # read to close
            if len(raw) >= ex.length:
                self._body_bytes(bytes(raw[: ex.length]), now)
                del raw[: ex.length]
                self._finish(None)
            elif ex.sse:
                self._body_bytes(bytes(raw), now)
                ex.length -= len(raw)
                raw.clear()
            return
        pos, n = 0, len(raw)
        while not ex.done:
            if ex.state == "size":
                eol = raw.find(b"\r\n", pos)
                if eol < 0:
                    break
                try:
                    size = int(bytes(raw[pos:eol]).split(b";", 1)[0].strip(), 16)
                except ValueError:
                    self.fail("malformed chunked encoding")
                    return
                pos = eol + 2
                ex.chunk_left = size
                ex.state = "data" if size else "trailer"
            elif ex.state == "data":
                take = min(ex.chunk_left, n - pos)
                if take == 0:
                    break
                self._body_bytes(bytes(raw[pos : pos + take]), now)
                pos += take
                ex.chunk_left -= take
                if ex.chunk_left == 0:
                    ex.state = "crlf"
            elif ex.state == "crlf":
                if n - pos < 2:
                    break
                pos += 2
                ex.state = "size"
            else:  # trailer lines, ended by an empty line
                eol = raw.find(b"\r\n", pos)
                if eol < 0:
                    break
                done = eol == pos
                pos = eol + 2
                if done:
                    self._finish(None)
        del raw[:pos]

    def _body_bytes(self, data: bytes, now: float) -> None:
        ex = self.exchange
        assert ex is not None
        if ex.sse:
            self.sse.feed(data, now, ex.result.events)
        else:
            self.buf += data

    def fail(self, message: str) -> None:
        self.keep_alive = False
        self._finish(message)
        if self.transport is not None:
            self.transport.close()

    def _finish(self, error: str | None) -> None:
        ex = self.exchange
        assert ex is not None
        if ex.done:
            return
        ex.done = True
        res = ex.result
        res.end_s = self.now()
        res.error = error
        if not ex.sse:
            res.body = bytes(self.buf)
        if not ex.future.done():
            ex.future.set_result(res)


def _free_fd_room() -> None:
    """Raise the open-file limit to its hard cap: one socket per concurrent stream."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):  # pragma: no cover - not Linux, or not allowed
        pass


class HttpTransport:
    """Keep-alive connections to one `http://` or `https://` origin, opened as needed."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: dict[str, str] | None = None,
        max_idle: int = 4096,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.now = now
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http:// or https:// URL, got {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.prefix = parts.path.rstrip("/")
        self.ssl: ssl.SSLContext | None = (
            ssl.create_default_context() if parts.scheme == "https" else None
        )
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self._head_tail = (
            f"Host: {parts.netloc}\r\nUser-Agent: moerun-bench\r\nAccept: */*\r\n{extra}"
        ).encode("latin-1")
        self._idle: list[_Connection] = []
        self._all: set[_Connection] = set()
        self.max_idle = max_idle
        _free_fd_room()

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> _Connection:
        _, proto = await loop.create_connection(
            lambda: _Connection(loop, self.now), self.host, self.port, ssl=self.ssl
        )
        self._all.add(proto)
        return proto

    def _request_bytes(self, method: str, path: str, body: bytes | None) -> bytes:
        line = f"{method} {self.prefix}{path} HTTP/1.1\r\n".encode("latin-1")
        if body is None:
            return line + self._head_tail + b"\r\n"
        length = f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        return line + self._head_tail + length.encode("latin-1") + body

    async def send(
        self, method: str, path: str, body: bytes | None, *, timeout_s: float | None = None
    ) -> HttpResult:
        """See `Transport.send`."""
        loop = asyncio.get_running_loop()
        request = self._request_bytes(method, path, body)
        for attempt in range(2):
            reused = False
            conn: _Connection | None = None
            while self._idle:
                c = self._idle.pop()
                if not c.closed:
                    conn, reused = c, True
                    break
            result = HttpResult(sent_s=self.now())
            if conn is None:
                try:
                    conn = await self._connect(loop)
                except OSError as exc:
                    reason = exc.strerror or str(exc)
                    result.error = f"cannot connect to {self.host}:{self.port}: {reason}"
                    result.end_s = self.now()
                    return result
            ex = _Exchange(loop.create_future(), result)
            conn.start(request, ex)
            timer = None
            if timeout_s is not None:
                timer = loop.call_later(timeout_s, conn.fail, f"timed out after {timeout_s:g} s")
            try:
                await ex.future
            except asyncio.CancelledError:
                conn.fail("cancelled")
                self._all.discard(conn)
                raise
            finally:
                if timer is not None:
                    timer.cancel()
            if result.error and reused and not ex.got_bytes and attempt == 0:
                self._all.discard(conn)
                continue  # the server closed an idle keep-alive connection: retry once
            if result.error is None and conn.keep_alive and not conn.closed:
                conn.exchange = None
                if len(self._idle) < self.max_idle:
                    self._idle.append(conn)
                else:
                    self._close(conn)
            else:
                self._close(conn)
            return result
        raise AssertionError("unreachable")

    def _close(self, conn: _Connection) -> None:
        self._all.discard(conn)
        if conn.transport is not None and not conn.closed:
            conn.transport.close()

    async def aclose(self) -> None:
        """See `Transport.aclose`."""
        for conn in list(self._all):
            self._close(conn)
        self._idle.clear()
        await asyncio.sleep(0)
