"""The load generator's network transport: `moerun.wire.client` with a sink that times
every SSE event as its bytes arrive.

A chunk's arrival time is read as the connection hands the de-framed bytes over, inside the
event loop's read callback; the request's coroutine wakes once per response, not once per
chunk; SSE payloads are parsed as JSON only after the response ends
(benchmarks/bench_loadgen.py measures it against httpx). It implements
`moerun.bench.transport.Transport`.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import time
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

from moerun.bench.transport import HttpResult
from moerun.wire.client import Connection, Pool, TransportError
from moerun.wire.proxies import proxy_for
from moerun.wire.sse import SseFramer, data_lines


class EventRecorder:
    """A body sink that fills an HttpResult: SSE events stamped on arrival, or the body."""

    __slots__ = ("body", "conn", "done", "framer", "now", "result", "sse")

    def __init__(self, result: HttpResult, now: Callable[[], float], done: asyncio.Future[None]):
        self.result = result
        self.now = now
        self.done = done
        self.conn: Connection | None = None
        self.framer = SseFramer()
        self.body = bytearray()
        self.sse: bool | None = None

    def start(self, conn: Connection) -> None:
        """The request is being written on `conn`: its send time."""
        self.conn = conn
        self.result.sent_s = self.now()

    def take_head(self) -> None:
        """Copy the response's status and headers into the result (once)."""
        if self.sse is not None or self.conn is None:
            return
        res = self.result
        res.status = self.conn.status
        for name, value in self.conn.headers.items():
            res.headers[name.decode("latin-1")] = value.decode("latin-1")
        self.sse = res.headers.get("content-type", "").startswith("text/event-stream")

    def feed(self, data: bytes) -> None:
        """Stamp each event `data` completes (or keep the bytes of a non-SSE body)."""
        if self.sse is None:
            self.take_head()
        if not self.sse:
            self.body += data
            return
        now = self.now()
        events = self.result.events
        # the usual piece, one one-line event with nothing held before it, skips the framer
        one_line = data.find(b"\n") == len(data) - 2 and data.endswith(b"\n\n")
        if one_line and not self.framer.pending and data.startswith(b"data:"):
            events.append((now, data[5:-2].strip()))
            return
        for event in self.framer.feed(data):
            for payload in data_lines(event):
                events.append((now, payload))

    def end(self, error: TransportError | None) -> None:
        """The response ended (or broke): its end time and error."""
        self.take_head()
        res = self.result
        res.end_s = self.now()
        if error is not None and res.error is None:
            res.error = str(error)
        res.body = bytes(self.body)
        if not self.done.done():
            self.done.set_result(None)


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
    """Keep-alive connections to one `http://` or `https://` origin, opened as needed
    (through the proxy HTTPS_PROXY / HTTP_PROXY / NO_PROXY name, or `env`'s)."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: dict[str, str] | None = None,
        max_idle: int = 4096,
        now: Callable[[], float] = time.monotonic,
        env: Mapping[str, str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.now = now
        self.base_url = base_url
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http:// or https:// URL, got {base_url!r}")
        self.prefix = parts.path.rstrip("/")
        self.proxy = proxy_for(base_url, os.environ if env is None else env)
        self.ssl_context = ssl_context
        self.max_idle = max_idle
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self._head_tail = f"User-Agent: moerun-bench\r\nAccept: */*\r\n{extra}"
        self._heads: dict[tuple[str, str], bytes] = {}
        self._pool: Pool | None = None
        _free_fd_room()

    @property
    def pool(self) -> Pool:
        """The connection pool (made on first use, on the running loop)."""
        if self._pool is None:
            self._pool = Pool(
                self.base_url,
                asyncio.get_running_loop(),
                proxy=self.proxy,
                ssl_context=self.ssl_context,
                max_idle=self.max_idle,
            )
        return self._pool

    @property
    def num_connections_opened(self) -> int:
        """Connections opened so far (keep-alive reuse keeps this low)."""
        return 0 if self._pool is None else self._pool.num_opened

    def _request_bytes(self, method: str, path: str, body: bytes | None) -> bytes:
        key = (method, path)
        head = self._heads.get(key)
        if head is None:
            head = self._heads[key] = (
                self.pool.head(method, self.prefix + path) + self._head_tail
            ).encode("latin-1")
        if body is None:
            return head + b"\r\n"
        length = f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        return head + length.encode("latin-1") + body

    async def send(
        self, method: str, path: str, body: bytes | None, *, timeout_s: float | None = None
    ) -> HttpResult:
        """See `Transport.send`."""
        loop = asyncio.get_running_loop()
        pool = self.pool
        result = HttpResult(sent_s=self.now())
        done: asyncio.Future[None] = loop.create_future()
        sink = EventRecorder(result, self.now, done)
        request = self._request_bytes(method, path, body)
        try:
            async with asyncio.timeout(timeout_s):
                await pool.send(request, b"", sink, None, None)
                await done
        except TransportError as exc:
            result.error = str(exc)
            result.end_s = self.now()
        except TimeoutError:
            result.error = f"timed out after {timeout_s:g} s"
            result.end_s = self.now()
        except asyncio.CancelledError:
            if sink.conn is not None:
                sink.conn.close()
            raise
        conn = sink.conn
        if conn is not None:
            if result.error is None:
                conn.release()
            else:
                conn.close()
        return result

    async def aclose(self) -> None:
        """See `Transport.aclose`."""
        if self._pool is not None:
            self._pool.close()
        await asyncio.sleep(0)
