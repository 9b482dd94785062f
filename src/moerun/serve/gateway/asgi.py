"""Small ASGI helpers for the gateway's raw routes (no framework on the hot path)."""

from __future__ import annotations

from moerun.wire.asgi import Receive, Send
from moerun.wire.openai_error import error_body, status_type

JSON = b"application/json"


class BodyTooLarge(Exception):
    """The request body is over the configured limit."""


class ClientGone(Exception):
    """The client disconnected."""


class Refusal(Exception):
    """The gateway itself refuses the request: status, message, code (OpenAI-shaped)."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str,
        headers: list[tuple[bytes, bytes]] | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers
        self.param = param


async def read_body(receive: Receive, limit_bytes: int, content_length: bytes | None) -> bytes:
    """The whole request body, refusing more than limit_bytes."""
    if content_length is not None:
        try:
            declared = int(content_length)
        except ValueError:
            declared = 0
        if declared > limit_bytes:
            raise BodyTooLarge
    msg = await receive()
    if msg["type"] == "http.disconnect":
        raise ClientGone
    body: bytes = msg.get("body", b"")
    if not msg.get("more_body"):
        if len(body) > limit_bytes:
            raise BodyTooLarge
        return body
    parts = [body]
    size = len(body)
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            raise ClientGone
        chunk = msg.get("body", b"")
        size += len(chunk)
        if size > limit_bytes:
            raise BodyTooLarge
        parts.append(chunk)
        if not msg.get("more_body"):
            return b"".join(parts)


async def send_bytes(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes = JSON,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """A complete response with a body."""
    h = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    if headers:
        h += headers
    await send({"type": "http.response.start", "status": status, "headers": h})
    await send({"type": "http.response.body", "body": body})


async def send_error(
    send: Send,
    status: int,
    message: str,
    code: str,
    headers: list[tuple[bytes, bytes]] | None = None,
    param: str | None = None,
) -> None:
    """An OpenAI-shaped error response made by the gateway itself."""
    await send_bytes(
        send, status, error_body(message, status_type(status), code, param), JSON, headers
    )
