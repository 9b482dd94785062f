"""The OpenAI error shape: `{"error": {"message", "type", "code", "param"}}`."""

from __future__ import annotations

import orjson

_STATUS_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


def error_body(message: str, type_: str, code: str | int, param: str | None = None) -> bytes:
    """An OpenAI-shaped error envelope (the gateway's codes are strings; vLLM's, which the
    emulator imitates, are the HTTP status as an int)."""
    return orjson.dumps(
        {"error": {"message": message, "type": type_, "code": code, "param": param}}
    )


def status_type(status: int) -> str:
    """The OpenAI error type for an HTTP status."""
    return _STATUS_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
