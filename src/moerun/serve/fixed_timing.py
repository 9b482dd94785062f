"""An OpenAI-shaped streaming server whose timing is known, for testing load generators.

Each request's first token is sent `ttft_s` after its body arrived and every later token
`itl_s` after the previous one's slot (each on its own timer, so streams do not bunch up), one
token per SSE chunk. Every chunk carries the server's send time (`time.monotonic()`, which another
process on the same machine reads on the same clock) in `moerun_sent_s`, so
a client's timing error is its own receive time minus that. Prompt tokens are counted by
moerun's shared rule (`moerun.core.load.synthetic_text.count_tokens`); the output is
`max_tokens` tokens. Faults: `error_rate` answers HTTP 500, `drop_rate` closes the connection
after half the tokens.

Written on raw asyncio protocols (not ASGI) so that it is never the bottleneck of the load
generator's capacity benchmark. Run it alone with
`python -m moerun.serve.fixed_timing --port 8123 --ttft-ms 50 --itl-ms 20`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from dataclasses import dataclass
from typing import Any, cast

from moerun.core.load.synthetic_text import count_tokens

MODEL_ID = "fixed-timing"


@dataclass(frozen=True, slots=True)
class FixedTiming:
    """The server's timing and faults."""

    ttft_s: float = 0.05
    itl_s: float = 0.02
    default_output_tokens: int = 16
    error_rate: float = 0.0
    drop_rate: float = 0.0
    seed: int = 0


_SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
)


def _response(status: str, body: bytes, ctype: str = "application/json") -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def _frame(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


class _ServerConnection(asyncio.Protocol):
    def __init__(self, timing: FixedTiming, rng: random.Random) -> None:
        self.timing = timing
        self.rng = rng
        self.loop = asyncio.get_running_loop()
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.busy = False
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while not self.busy:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
            length = 0
            for line in head[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            if len(self.buf) < end + 4 + length:
                return
            body = bytes(self.buf[end + 4 : end + 4 + length])
            del self.buf[: end + 4 + length]
            method, path = [*head[0].split(" "), "", ""][:2]
            self._handle(method, path, body)

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def _handle(self, method: str, path: str, body: bytes) -> None:
        if method == "GET" and path == "/v1/models":
            data = {"object": "list", "data": [{"id": MODEL_ID, "object": "model"}]}
            self._write(_response("200 OK", json.dumps(data).encode()))
        elif method == "GET" and path == "/health":
            self._write(_response("200 OK", b""))
        elif method == "POST" and path in ("/v1/chat/completions", "/v1/completions"):
            try:
                req = json.loads(body)
            except ValueError:
                self._write(_response("400 Bad Request", b'{"error":{"message":"bad JSON"}}'))
                return
            if self.rng.random() < self.timing.error_rate:
                err = b'{"error":{"message":"injected fault","type":"server_error","code":500}}'
                self._write(_response("500 Internal Server Error", err))
                return
            self._generate(req, chat=path.endswith("chat/completions"))
        else:
            self._write(_response("404 Not Found", b'{"error":{"message":"not found"}}'))

    def _generate(self, req: dict[str, Any], *, chat: bool) -> None:
        if chat:
            prompt = " ".join(str(m.get("content") or "") for m in req.get("messages", []))
        else:
            prompt = str(req.get("prompt", ""))
        n_in = count_tokens(prompt)
        n_out = int(req.get("max_tokens") or self.timing.default_output_tokens)
        drop_at = n_out // 2 if self.rng.random() < self.timing.drop_rate else None
        usage = {"prompt_tokens": n_in, "completion_tokens": n_out, "total_tokens": n_in + n_out}
        if not req.get("stream"):
            text = " ".join(["tok"] * n_out)
            choice: dict[str, Any] = {"index": 0, "finish_reason": "length"}
            choice["message" if chat else "text"] = (
                {"role": "assistant", "content": text} if chat else text
            )
            data = {"id": "x", "object": "completion", "choices": [choice], "usage": usage}
            t_end = self.loop.time() + self.timing.ttft_s + self.timing.itl_s * (n_out - 1)
            self.busy = True
            self.loop.call_at(t_end, self._reply, _response("200 OK", json.dumps(data).encode()))
            return
        self._write(_SSE_HEAD)
        self.busy = True
        t0 = self.loop.time() + self.timing.ttft_s
        include_usage = bool((req.get("stream_options") or {}).get("include_usage"))
        state = _Stream(n_out, chat, drop_at, usage if include_usage else None)
        self.loop.call_at(t0, self._token, state, t0)

    def _reply(self, data: bytes) -> None:
        self._write(data)
        self.busy = False

    def _token(self, st: _Stream, due: float) -> None:
        if self.closed:
            return
        if st.drop_at is not None and st.sent == st.drop_at:
            assert self.transport is not None
            self.transport.close()
            return
        now = time.monotonic()
        delta = "tok" if st.sent == 0 else " tok"
        if st.chat:
            choice = f'{{"index":0,"delta":{{"content":"{delta}"}}}}'
        else:
            choice = f'{{"index":0,"text":"{delta}"}}'
        event = f'data: {{"id":"x","choices":[{choice}],"moerun_sent_s":{now!r}}}\n\n'
        st.sent += 1
        out = _frame(event.encode())
        if st.sent == st.n:
            if st.usage is not None:
                tail = json.dumps({"id": "x", "choices": [], "usage": st.usage})
                out += _frame(f"data: {tail}\n\n".encode())
            out += _frame(b"data: [DONE]\n\n") + b"0\r\n\r\n"
            self._write(out)
            self.busy = False
            if self.buf:
                self.data_received(b"")
            return
        self._write(out)
        nxt = due + self.timing.itl_s
        self.loop.call_at(nxt, self._token, st, nxt)


@dataclass(slots=True)
class _Stream:
    n: int
    chat: bool
    drop_at: int | None
    usage: dict[str, int] | None
    sent: int = 0


async def start_fixed_server(host: str, port: int, timing: FixedTiming) -> asyncio.Server:
    """Start serving on `host:port` (port 0: any free port) in the running loop."""
    rng = random.Random(timing.seed)
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: _ServerConnection(timing, rng), host, port, backlog=4096
    )


def main(argv: list[str] | None = None) -> None:
    """Serve until killed."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8123)
    p.add_argument("--ttft-ms", type=float, default=50.0)
    p.add_argument("--itl-ms", type=float, default=20.0)
    p.add_argument("--error-rate", type=float, default=0.0)
    p.add_argument("--drop-rate", type=float, default=0.0)
    args = p.parse_args(argv)
    timing = FixedTiming(
        ttft_s=args.ttft_ms / 1e3,
        itl_s=args.itl_ms / 1e3,
        error_rate=args.error_rate,
        drop_rate=args.drop_rate,
    )

    async def serve() -> None:
        server = await start_fixed_server(args.host, args.port, timing)
        async with server:
            await server.serve_forever()

    try:
        import uvloop

        uvloop.run(serve())
    except ImportError:  # pragma: no cover - uvloop is optional
        asyncio.run(serve())


if __name__ == "__main__":
    main()
