"""An in-process transport: the load generator calls an ASGI app directly, no sockets.

Used to drive the emulator on a virtual clock (`moerun.serve.emulator.clock`), where the
whole exchange costs no real time; chunk times are the loop's clock when the app sends them.
An exception raised by the app mid-response reads as a dropped connection, as it would over
the network.
"""

from __future__ import annotations

import asyncio
from typing import Any

from moerun.bench.transport import HttpResult
from moerun.wire.asgi import AsgiApp, Message
from moerun.wire.sse import SseFramer, data_lines


class AsgiTransport:
    """Sends requests to an ASGI app in this event loop (see `moerun.bench.http.Transport`)."""

    def __init__(self, app: AsgiApp) -> None:
        self.app = app

    def now(self) -> float:
        """The running loop's clock (virtual under a virtual-time loop)."""
        return asyncio.get_running_loop().time()

    async def send(
        self, method: str, path: str, body: bytes | None, *, timeout_s: float | None = None
    ) -> HttpResult:
        """See `Transport.send`."""
        result = HttpResult(sent_s=self.now())
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"in-process"), (b"content-type", b"application/json")],
            "client": ("127.0.0.1", 0),
            "server": ("127.0.0.1", 80),
        }
        request_sent = False
        gone = asyncio.Event()
        sse = SseFramer()
        body_parts: list[bytes] = []
        is_sse = False

        async def receive() -> Message:
            nonlocal request_sent
            if not request_sent:
                request_sent = True
                return {"type": "http.request", "body": body or b"", "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            nonlocal is_sse
            if message["type"] == "http.response.start":
                result.status = int(message["status"])
                for k, v in message.get("headers", []):
                    result.headers[k.decode("latin-1").lower()] = v.decode("latin-1")
                is_sse = result.headers.get("content-type", "").startswith("text/event-stream")
            elif message["type"] == "http.response.body":
                data = message.get("body", b"")
                if is_sse:
                    now = self.now()
                    for event in sse.feed(data):
                        result.events.extend((now, payload) for payload in data_lines(event))
                else:
                    body_parts.append(data)

        try:
            await asyncio.wait_for(self.app(scope, receive, send), timeout_s)
        except TimeoutError:
            result.error = f"timed out after {timeout_s:g} s"
        except Exception:
            result.error = "connection closed before the response ended"
        finally:
            gone.set()
        result.body = b"".join(body_parts)
        result.end_s = self.now()
        return result

    async def aclose(self) -> None:
        """Nothing to close."""
