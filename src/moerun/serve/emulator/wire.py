"""The emulator's wire format: OpenAI request schemas (pydantic, only here) and responses.

Requests accept unknown fields, as vLLM does. `prompt_parts` turns a request into the parts
the shared token rule counts (`moerun.core.load.synthetic_text`): each chat message's text (an
assistant message is its reasoning then its content), or the completion prompt.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from moerun.wire.openai_error import error_body

FINGERPRINT = "moerun-emulator-synthetic-text"


class StreamOptions(BaseModel):
    """`stream_options`."""

    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class _Common(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    min_tokens: int = Field(default=0, ge=0)
    ignore_eos: bool = False
    stream: bool = False
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = None
    n: Literal[1] = 1

    @property
    def limit(self) -> int | None:
        """The output cap the client set."""
        return self.max_completion_tokens or self.max_tokens

    @property
    def stops(self) -> tuple[str, ...]:
        """Stop strings."""
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(s for s in self.stop if s)


class ChatMessage(BaseModel):
    """One chat message; `content` may be a string or a list of text parts."""

    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[dict[str, Any]] | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None

    @property
    def text(self) -> str:
        """Reasoning (if any) then content, as one text."""
        content = self.content
        if isinstance(content, list):
            content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        thought = self.reasoning_content or self.reasoning or ""
        return f"{thought} {content or ''}" if thought else content or ""


class ChatRequest(_Common):
    """`POST /v1/chat/completions`."""

    messages: list[ChatMessage] = Field(min_length=1)
    chat_template_kwargs: dict[str, Any] | None = None


class CompletionRequest(_Common):
    """`POST /v1/completions` (text prompts only)."""

    prompt: str | list[str]


def prompt_parts(req: ChatRequest | CompletionRequest) -> list[tuple[list[str], bool]]:
    """The prompt as (words, whole) parts: an earlier answer is one whole part."""
    if isinstance(req, ChatRequest):
        return [(m.text.split(), m.role == "assistant") for m in req.messages]
    prompt = req.prompt if isinstance(req.prompt, str) else " ".join(req.prompt)
    return [(prompt.split(), False)]


def usage(prompt_tokens: int, completion_tokens: int, cached_tokens: int) -> dict[str, Any]:
    """The `usage` object, with cached prompt tokens."""
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cached_tokens},
    }


class ChunkWriter:
    """Builds one response's SSE events. Output words are plain ASCII, so the deltas go
    into a pre-encoded template rather than through `json.dumps` per chunk."""

    def __init__(self, rid: str, model: str, created: int, *, chat: bool) -> None:
        self.chat = chat
        obj = "chat.completion.chunk" if chat else "text_completion"
        head = {
            "id": rid,
            "object": obj,
            "created": created,
            "model": model,
            "system_fingerprint": FINGERPRINT,
        }
        self.head = head
        self.prefix = json.dumps(head)[:-1] + ',"choices":[{"index":0,'
        self.first = True

    def delta(self, content: str, reasoning: str) -> str:
        """One event carrying new output text."""
        tail = ',"logprobs":null,"finish_reason":null}]}\n\n'
        if not self.chat:
            return f'data: {self.prefix}"text":"{content}"{tail}'
        fields = []
        if self.first:
            fields.append('"role":"assistant"')
            self.first = False
        if reasoning:
            fields.append(f'"reasoning_content":"{reasoning}"')
        if content:
            fields.append(f'"content":"{content}"')
        inner = ",".join(fields)
        return (
            f'data: {self.prefix}"delta":{{{inner}}},"logprobs":null,"finish_reason":null}}]}}\n\n'
        )

    def finish(self, reason: str) -> str:
        """The event that carries the finish reason."""
        body = '"text":""' if not self.chat else '"delta":{}'
        return f'data: {self.prefix}{body},"logprobs":null,"finish_reason":"{reason}"}}]}}\n\n'

    def usage(self, u: dict[str, Any]) -> str:
        """The final usage event (`stream_options.include_usage`)."""
        return f"data: {json.dumps({**self.head, 'choices': [], 'usage': u})}\n\n"

    @staticmethod
    def error(message: str, status: int) -> str:
        """An error event (the stream has already started)."""
        return f"data: {error_body(message, 'BadRequestError', status).decode()}\n\n"


def full_response(
    w: ChunkWriter, content: str, reasoning: str, finish: str, u: dict[str, Any]
) -> bytes:
    """A non-streamed completion."""
    if w.chat:
        msg: dict[str, Any] = {"role": "assistant", "content": content}
        if reasoning:
            msg["reasoning_content"] = reasoning
        choice: dict[str, Any] = {"index": 0, "message": msg}
        obj = "chat.completion"
    else:
        choice, obj = {"index": 0, "text": content}, "text_completion"
    choice.update(logprobs=None, finish_reason=finish)
    return json.dumps({**w.head, "object": obj, "choices": [choice], "usage": u}).encode()
