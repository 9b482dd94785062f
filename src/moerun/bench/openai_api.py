"""OpenAI request bodies and the reading of their responses (streamed or not).

Timing follows `vllm bench serve` (see moerun.core.load.metrics): a chunk counts as output when its
delta carries text (`content`, `reasoning_content` or `reasoning`; `text` for completions), so
a reasoning model's thinking counts toward TTFT; the request ends with its last output chunk.
Token counts come from the server's `usage` (requested with `stream_options.include_usage`),
falling back to the word rule when a server sends none.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from moerun.bench.transport import HttpResult

ENDPOINTS = {"chat": "/v1/chat/completions", "completions": "/v1/completions"}


@dataclass(frozen=True, slots=True)
class Reply:
    """What one response said, with the arrival time of every output chunk."""

    ok: bool
    status: int
    error: str | None
    chunk_s: tuple[float, ...]
    end_s: float
    content: str
    reasoning: str
    prompt_tokens: int | None
    completion_tokens: int | None
    cached_tokens: int | None
    finish_reason: str | None


def request_body(
    *,
    model: str,
    max_tokens: int,
    messages: list[dict[str, str]] | None = None,
    prompt: str | None = None,
    fixed_output: bool = True,
    stream: bool = True,
    extra: dict[str, Any] | None = None,
) -> bytes:
    """A chat (`messages`) or completions (`prompt`) body; `fixed_output` asks the engine
    for exactly `max_tokens` tokens (vLLM's and SGLang's `ignore_eos` and `min_tokens`)."""
    body: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "stream": stream}
    if messages is not None:
        body["messages"] = messages
    else:
        body["prompt"] = prompt or ""
    if stream:
        body["stream_options"] = {"include_usage": True}
    if fixed_output:
        body["ignore_eos"] = True
        body["min_tokens"] = max_tokens
    if extra:
        body.update(extra)
    return json.dumps(body, separators=(",", ":")).encode()


def _error_message(body: bytes) -> str:
    try:
        obj = json.loads(body)
    except ValueError:
        return body[:200].decode("utf-8", "replace").strip() or "(empty body)"
    if isinstance(obj, dict):
        err = obj.get("error", obj.get("detail", obj))
        if isinstance(err, dict):
            return str(err.get("message", err))[:300]
        return str(err)[:300]
    return str(obj)[:300]


def _usage(obj: Any) -> tuple[int | None, int | None, int | None]:
    if not isinstance(obj, dict):
        return None, None, None
    details = obj.get("prompt_tokens_details") or {}
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    return obj.get("prompt_tokens"), obj.get("completion_tokens"), cached


def _failed(res: HttpResult, error: str, **kw: Any) -> Reply:
    return Reply(
        ok=False,
        status=res.status,
        error=error,
        chunk_s=kw.get("chunk_s", ()),
        end_s=res.end_s,
        content=kw.get("content", ""),
        reasoning=kw.get("reasoning", ""),
        prompt_tokens=None,
        completion_tokens=None,
        cached_tokens=None,
        finish_reason=None,
    )


def read_reply(res: HttpResult, *, chat: bool) -> Reply:
    """Parse one response; any failure becomes `ok=False` with a one-line reason."""
    if res.status and res.status != 200:
        return _failed(res, f"HTTP {res.status}: {_error_message(res.body)}")
    if res.error and not res.events:
        return _failed(res, res.error)
    if res.events:
        return _read_stream(res, chat=chat)
    try:
        obj = json.loads(res.body)
        choice = obj["choices"][0]
        if chat:
            msg = choice.get("message") or {}
            content = msg.get("content") or ""
            reasoning = msg.get("reasoning_content") or msg.get("reasoning") or ""
        else:
            content, reasoning = choice.get("text") or "", ""
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return _failed(res, "the response is not an OpenAI completion")
    p, c, cached = _usage(obj.get("usage"))
    return Reply(
        True, 200, None, (res.end_s,), res.end_s, content, reasoning, p, c, cached,
        choice.get("finish_reason"),
    )  # fmt: skip


def _read_stream(res: HttpResult, *, chat: bool) -> Reply:
    chunk_s: list[float] = []
    content: list[str] = []
    reasoning: list[str] = []
    usage: Any = None
    finish: str | None = None
    done = False
    for t, data in res.events:
        if data == b"[DONE]":
            done = True
            continue
        try:
            obj = json.loads(data)
        except ValueError:
            return _failed(res, "a stream event is not JSON", chunk_s=tuple(chunk_s))
        if not isinstance(obj, dict):
            continue
        if "error" in obj:
            return _failed(res, f"error in stream: {_error_message(data)}", chunk_s=tuple(chunk_s))
        if obj.get("usage"):
            usage = obj["usage"]
        choices = obj.get("choices")
        if not choices:
            continue
        c = choices[0]
        if chat:
            delta = c.get("delta") or {}
            piece = delta.get("content") or ""
            think = delta.get("reasoning_content") or delta.get("reasoning") or ""
        else:
            piece, think = c.get("text") or "", ""
        if piece or think:
            chunk_s.append(t)
            content.append(piece)
            reasoning.append(think)
        finish = c.get("finish_reason") or finish
    text, thought = "".join(content), "".join(reasoning)
    if res.error or not (done or finish):
        reason = res.error or "the stream ended without a finish reason or [DONE]"
        return _failed(res, reason, chunk_s=tuple(chunk_s), content=text, reasoning=thought)
    p, c_tokens, cached = _usage(usage)
    end = chunk_s[-1] if chunk_s else res.end_s
    return Reply(
        True, 200, None, tuple(chunk_s), end, text, thought, p, c_tokens, cached, finish
    )  # fmt: skip
