"""The one response shape the gateway emits, whatever the backend sent.

- Reasoning text is under `reasoning_content` (vLLM >= 0.17 says `reasoning`; SGLang and Z.ai
  say `reasoning_content`).
- Errors are `{"error": {"message", "type", "code", "param"}}` with a string `code`, whether the
  backend used that, vLLM's int code, the old flat `{"object": "error", ...}`, FastAPI's
  `{"detail": ...}` or plain text; the backend's own type and code are kept under
  `upstream_type` / `upstream_code`.
"""

from __future__ import annotations

from typing import Any

import orjson

from moerun.wire.openai_error import status_type


def normalise_error(status: int, body: bytes) -> bytes:
    """Any upstream error body as the gateway's error envelope (the status is kept)."""
    try:
        data: Any = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        data = None
    inner: dict[str, Any] = {}
    if isinstance(data, dict):
        if isinstance(data.get("error"), dict):
            inner = data["error"]
        elif data.get("object") == "error" or "message" in data:
            inner = data
        elif "detail" in data:
            inner = {"message": data["detail"]}
        elif isinstance(data.get("error"), str):
            inner = {"message": data["error"]}
    message = inner.get("message")
    if not isinstance(message, str):
        text = body.decode("utf-8", "replace").strip() if data is None else ""
        message = text[:500] or (str(message) if message is not None else f"upstream HTTP {status}")
    out: dict[str, Any] = {
        "message": message,
        "type": status_type(status),
        "code": str(inner.get("code") if inner.get("code") is not None else status),
        "param": inner.get("param") if isinstance(inner.get("param"), str) else None,
    }
    if inner.get("type") is not None:
        out["upstream_type"] = inner["type"]
    if inner.get("code") is not None:
        out["upstream_code"] = inner["code"]
    return orjson.dumps({"error": out})


def normalise_message(message: dict[str, Any]) -> bool:
    """Move `reasoning` to `reasoning_content` in a message or delta; True if it changed."""
    if "reasoning" not in message:
        return False
    reasoning = message.pop("reasoning")
    if message.get("reasoning_content") is None:
        message["reasoning_content"] = reasoning
    return True


def normalise_choices(data: dict[str, Any], part: str) -> bool:
    """Normalise every choice's `message` (part="message") or `delta` (part="delta")."""
    changed = False
    choices = data.get("choices")
    if isinstance(choices, list):
        for choice in choices:
            if isinstance(choice, dict) and isinstance(choice.get(part), dict):
                changed |= normalise_message(choice[part])
    return changed


def usage_counts(usage: Any) -> tuple[int, int, int] | None:
    """(input, cached input, output) tokens from an OpenAI usage object; None if absent."""
    if not isinstance(usage, dict):
        return None
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    return (
        _count(usage.get("prompt_tokens")),
        _count(cached),
        _count(usage.get("completion_tokens")),
    )


def _count(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0
