"""The lean HTTP client: framing, keep-alive, failures, SSE splitting."""

from __future__ import annotations

import asyncio
import socket

from moerun.bench.http import HttpTransport
from moerun.wire.sse import SseFramer, data_lines
from tests.bench.conftest import ThreadServer, raw_server


def _send(url: str, path: str = "/x", **kw: object) -> list[object]:
    async def main() -> list[object]:
        t = HttpTransport(url)
        try:
            return [await t.send("GET", path, None, **kw)]  # type: ignore[arg-type]
        finally:
            await t.aclose()

    return asyncio.run(main())


def test_content_length_and_keep_alive(fast_server: ThreadServer) -> None:
    async def main() -> None:
        t = HttpTransport(fast_server.url + "/")
        for _ in range(3):
            res = await t.send("GET", "/v1/models", None)
            assert res.status == 200 and res.error is None
            assert b"fixed-timing" in res.body
        assert t.num_connections_opened == 1  # one connection reused
        await t.aclose()

    asyncio.run(main())


def test_chunked_sse_split_across_reads() -> None:
    body = b'data: {"a":1}\n\ndata: {"a":2}\r\n\r\ndata: [DONE]\n\n'
    chunks = b"".join(
        b"%x\r\n%s\r\n" % (len(body[i : i + 7]), body[i : i + 7]) for i in range(0, len(body), 7)
    )
    answer = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        + chunks
        + b"0\r\n\r\n"
    )
    with raw_server(answer) as srv:
        (res,) = _send(srv.url)
    assert res.error is None  # type: ignore[attr-defined]
    assert [e for _, e in res.events] == [b'{"a":1}', b'{"a":2}', b"[DONE]"]  # type: ignore[attr-defined]


def test_refused_and_garbage() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (res,) = _send(f"http://127.0.0.1:{port}")
    assert res.status == 0 and "cannot connect" in (res.error or "")  # type: ignore[attr-defined]
    with raw_server(b"SSH-2.0-OpenSSH\r\n\r\n") as srv:
        (res,) = _send(srv.url)
    assert "not an HTTP/1.x response" in (res.error or "")  # type: ignore[attr-defined]


def test_truncated_body() -> None:
    with raw_server(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort") as srv:
        (res,) = _send(srv.url)
    assert res.error == "connection closed before the response ended"  # type: ignore[attr-defined]


def test_sse_framer_keeps_partial_events() -> None:
    f = SseFramer()
    assert f.feed(b"data: 1\n\nda") == [b"data: 1"] and f.pending
    assert f.feed(b"ta: 2\n") == []
    assert f.feed(b"\n") == [b"data: 2"] and not f.pending
    assert f.feed(b": ping\r\n\r\nevent: x\r\ndata: a\r\ndata:b\r\n\r\n") == [
        b": ping",
        b"event: x\ndata: a\ndata:b",
    ]
    assert data_lines(b"event: x\ndata: a\ndata:b") == [b"a", b"b"]
    assert data_lines(b": ping") == [] and data_lines(b"data: [DONE]") == [b"[DONE]"]
