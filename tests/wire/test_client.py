"""The one HTTP client: TLS, HTTP proxies (CONNECT for https, absolute-form for http), the
body-sink contract. Every server here is real and on 127.0.0.1; so is the proxy, a small
CONNECT-capable forward proxy written below."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from moerun.bench.http import HttpTransport
from moerun.wire.asgi import Receive, Scope, Send
from moerun.wire.client import Connection, Pool, TransportError
from tests.bench.conftest import ThreadServer, raw_server
from tests.fixtures.servers import UvicornThread

ORIGIN = "origin.test"  # resolved by the proxy only: the client never looks it up


@dataclass
class ForwardProxy:
    """A forward proxy: CONNECT tunnels, and absolute-form requests sent on to the origin.
    `hosts` maps names to addresses (as DNS would); `refuse` answers every request with it."""

    hosts: dict[str, str]
    refuse: int | None = None
    lines: list[str] = field(default_factory=list)
    auth: list[str | None] = field(default_factory=list)
    num_open: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.num_open += 1
        try:
            await self._handle(reader, writer)
        finally:
            self.num_open -= 1

    def wait_idle(self) -> None:
        """Until every proxied connection has ended (so none is cut when the proxy stops)."""
        deadline = time.monotonic() + 5
        while self.num_open and time.monotonic() < deadline:
            time.sleep(0.01)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            writer.close()
            return
        line, *rest = head.decode("latin-1").split("\r\n")
        self.lines.append(line)
        fields = [h for h in rest if h]
        self.auth.append(
            next(
                (
                    h.split(":", 1)[1].strip()
                    for h in fields
                    if h.lower().startswith("proxy-authorization:")
                ),
                None,
            )
        )
        method, target, version = line.split(" ")
        if self.refuse is not None:
            writer.write(
                b"HTTP/1.1 %d No\r\ncontent-length: 0\r\nconnection: close\r\n\r\n" % self.refuse
            )
            await writer.drain()
            writer.close()
            return
        if method == "CONNECT":
            host, port = target.rsplit(":", 1)
            up_reader, up_writer = await asyncio.open_connection(self.hosts[host], int(port))
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            url = urlsplit(target)
            assert url.hostname is not None and url.port is not None
            up_reader, up_writer = await asyncio.open_connection(self.hosts[url.hostname], url.port)
            kept = [h for h in fields if not h.lower().startswith("proxy-authorization:")]
            path = url.path + (f"?{url.query}" if url.query else "")
            lines = [f"{method} {path} {version}", *kept, "", ""]
            up_writer.write("\r\n".join(lines).encode("latin-1"))
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        # a pipe still open when the proxy's loop stops is closed by the garbage collector
        with contextlib.suppress(RuntimeError):
            writer.close()


async def origin_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers JSON with what it saw (path and Host), or an SSE stream at /stream."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    host = dict(scope["headers"]).get(b"host", b"").decode()
    if scope["path"].endswith("/stream"):
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})  # fmt: skip
        for i in range(3):
            await send(
                {"type": "http.response.body", "body": b"data: %d\n\n" % i, "more_body": True}
            )
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})
        return
    body = json.dumps({"path": scope["path"], "host": host}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for ORIGIN (and its key)."""
    d = tmp_path_factory.mktemp("tls")
    crt, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(crt), "-days", "1", "-subj", f"/CN={ORIGIN}",
         "-addext", f"subjectAltName=DNS:{ORIGIN}"],
        check=True, capture_output=True,
    )  # fmt: skip
    return crt, key


@pytest.fixture(scope="module")
def tls_origin(cert: tuple[Path, Path]) -> Iterator[UvicornThread]:
    with UvicornThread(origin_app, ssl_certfile=str(cert[0]), ssl_keyfile=str(cert[1])) as srv:
        yield srv


@pytest.fixture(scope="module")
def plain_origin() -> Iterator[UvicornThread]:
    with UvicornThread(origin_app) as srv:
        yield srv


def _proxy_thread(proxy: ForwardProxy) -> ThreadServer:
    return ThreadServer(lambda: asyncio.start_server(proxy.handle, "127.0.0.1", 0))


def test_https_through_a_connect_proxy(cert: tuple[Path, Path], tls_origin: UvicornThread) -> None:
    proxy = ForwardProxy({ORIGIN: "127.0.0.1"})
    trust = ssl.create_default_context(cafile=str(cert[0]))
    with _proxy_thread(proxy) as px:
        env = {"HTTPS_PROXY": f"http://bench:s3cret@127.0.0.1:{px.port}"}
        url = f"https://{ORIGIN}:{tls_origin.port}/v1"

        async def main() -> list[object]:
            t = HttpTransport(url, env=env, ssl_context=trust)
            out = [await t.send("GET", "/models", None), await t.send("POST", "/stream", b"{}")]
            out.append(t.num_connections_opened)
            await t.aclose()
            return out

        first, stream, opened = asyncio.run(main())
        proxy.wait_idle()
    assert first.error is None and first.status == 200  # type: ignore[attr-defined]
    # TLS ran end to end to the origin: it saw the origin-form path and the origin's name
    assert json.loads(first.body) == {"path": "/v1/models", "host": f"{ORIGIN}:{tls_origin.port}"}  # type: ignore[attr-defined]
    assert [e for _, e in stream.events] == [b"0", b"1", b"2", b"[DONE]"]  # type: ignore[attr-defined]
    # one tunnel, reused; the proxy saw only the CONNECT line, with the credentials
    assert proxy.lines == [f"CONNECT {ORIGIN}:{tls_origin.port} HTTP/1.1"] and opened == 1
    assert proxy.auth == ["Basic YmVuY2g6czNjcmV0"]  # base64("bench:s3cret")


def test_tls_is_verified_through_the_tunnel(tls_origin: UvicornThread) -> None:
    proxy = ForwardProxy({ORIGIN: "127.0.0.1"})
    with _proxy_thread(proxy) as px:
        env = {"HTTPS_PROXY": f"http://127.0.0.1:{px.port}"}

        async def main() -> object:
            t = HttpTransport(f"https://{ORIGIN}:{tls_origin.port}", env=env)  # system CAs
            try:
                return await t.send("GET", "/x", None)
            finally:
                await t.aclose()

        res = asyncio.run(main())
        proxy.wait_idle()
    assert res.status == 0 and "CERTIFICATE_VERIFY_FAILED" in (res.error or "")  # type: ignore[attr-defined]


def test_http_through_a_proxy_uses_absolute_form(plain_origin: UvicornThread) -> None:
    proxy = ForwardProxy({ORIGIN: "127.0.0.1"})
    with _proxy_thread(proxy) as px:
        env = {"HTTP_PROXY": f"http://u:p@127.0.0.1:{px.port}"}
        url = f"http://{ORIGIN}:{plain_origin.port}/v1"

        async def main() -> object:
            t = HttpTransport(url, env=env)
            try:
                return await t.send("GET", "/models", None)
            finally:
                await t.aclose()

        res = asyncio.run(main())
        proxy.wait_idle()
    assert res.error is None and res.status == 200  # type: ignore[attr-defined]
    assert json.loads(res.body) == {"path": "/v1/models", "host": f"{ORIGIN}:{plain_origin.port}"}  # type: ignore[attr-defined]
    assert proxy.lines == [f"GET http://{ORIGIN}:{plain_origin.port}/v1/models HTTP/1.1"]
    assert proxy.auth == ["Basic dTpw"]  # base64("u:p")


def test_a_refused_tunnel_is_a_transport_error(tls_origin: UvicornThread) -> None:
    proxy = ForwardProxy({ORIGIN: "127.0.0.1"}, refuse=407)
    with _proxy_thread(proxy) as px:
        env = {"HTTPS_PROXY": f"http://127.0.0.1:{px.port}"}

        async def main() -> object:
            t = HttpTransport(f"https://{ORIGIN}:{tls_origin.port}", env=env)
            try:
                return await t.send("GET", "/x", None)
            finally:
                await t.aclose()

        res = asyncio.run(main())
        proxy.wait_idle()
    assert res.status == 0  # type: ignore[attr-defined]
    assert (
        res.error
        == f"cannot connect to {ORIGIN}:{tls_origin.port}: proxy 127.0.0.1:{px.port} answered 407"
    )  # type: ignore[attr-defined]


class Recorder:
    """A sink that writes down every call it gets, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def start(self, conn: Connection) -> None:
        self.calls.append(("start", conn.status))

    def feed(self, data: bytes) -> None:
        self.calls.append(("feed", data))

    def end(self, error: TransportError | None) -> None:
        self.calls.append(("end", None if error is None else str(error)))


def _exchange(url: str, head: bytes) -> tuple[Recorder, Connection | TransportError]:
    async def main() -> tuple[Recorder, Connection | TransportError]:
        pool = Pool(url, asyncio.get_running_loop())
        sink = Recorder()
        try:
            conn: Connection | TransportError = await pool.send(head, b"", sink, 5.0, 5.0)
            assert isinstance(conn, Connection)
            while not conn.complete and conn.error is None:
                await conn.wait(5.0, "test")
        except TransportError as exc:
            conn = exc
        pool.close()
        return sink, conn

    return asyncio.run(main())


def test_sink_sees_start_feed_end_in_order() -> None:
    body = b"hello, world"
    chunked = b"5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n"
    answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked
    with raw_server(answer) as srv:
        sink, conn = _exchange(srv.url, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
    assert isinstance(conn, Connection) and conn.status == 200
    assert sink.calls == [("start", 0), ("feed", b"hello"), ("feed", b", world"), ("end", None)]
    assert b"".join(d for k, d in sink.calls if k == "feed") == body  # type: ignore[misc]


def test_body_read_to_close_ends_cleanly_and_a_cut_one_does_not() -> None:
    with raw_server(b"HTTP/1.1 200 OK\r\n\r\nuntil close") as srv:
        sink, conn = _exchange(srv.url, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
    assert sink.calls[-1] == ("end", None) and ("feed", b"until close") in sink.calls
    assert isinstance(conn, Connection) and not conn.keep_alive
    with raw_server(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc") as srv:
        sink, conn = _exchange(srv.url, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
    assert sink.calls[-1] == ("end", "connection closed before the response ended")


def test_failure_before_the_headers_is_raised_not_sent_to_the_sink() -> None:
    with raw_server(b"SSH-2.0-OpenSSH\r\n\r\n") as srv:
        sink, err = _exchange(srv.url, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
    assert isinstance(err, TransportError) and "not an HTTP/1.x response" in str(err)
    assert sink.calls == [("start", 0)]
