"""The official openai SDK against the gateway, as an application uses it, with real backends."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.fixtures.upstream import UpstreamServer
from tests.serve.factories import MODEL, GatewayServer, backend_entry, make_config

MESSAGES: Any = [{"role": "user", "content": "hi"}]
TOOLS: Any = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


@pytest.fixture
def one(
    upstream: Callable[..., UpstreamServer],
    gateway: Callable[..., GatewayServer],
    sqlite_url: str,
) -> tuple[GatewayServer, UpstreamServer]:
    """A gateway over one backend that says `reasoning` (vLLM >= 0.17), with a secret key."""
    be = upstream(name="a", reasoning_field="reasoning")
    cfg = make_config([backend_entry("a", be, api_key_env="A_KEY")], sqlite_url)
    return gateway(cfg, {"A_KEY": "sk-backend-secret"}), be


def _ledger(gw: GatewayServer) -> list[tuple[Any, ...]]:
    path = gw.app.config.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT backend, model, stream, status, input_tokens, cached_tokens, output_tokens "
            "FROM usage_records ORDER BY id"
        ).fetchall()


def test_chat_non_streaming(one: tuple[GatewayServer, UpstreamServer]) -> None:
    gw, be = one
    with gw.client() as client:
        r = client.chat.completions.create(model=MODEL, messages=MESSAGES, temperature=0.2)
    msg = r.choices[0].message
    assert msg.content == "hello from a"
    extra = msg.model_extra or {}
    assert extra["reasoning_content"] == "thinking" and "reasoning" not in extra
    assert r.usage is not None and r.usage.prompt_tokens == 12
    assert r.usage.prompt_tokens_details is not None
    assert r.usage.prompt_tokens_details.cached_tokens == 8
    # Exactly the documented rewrites: model id and credentials; other fields untouched.
    sent = be.behaviour.stats["bodies"][-1]
    assert sent["model"] == "zai-org/GLM-5.1-FP8-a" and sent["temperature"] == 0.2
    assert be.behaviour.stats["auth"][-1] == "Bearer sk-backend-secret"
    assert _ledger(gw) == [("a", MODEL, 0, "ok", 12, 8, 8)]


def test_chat_streaming_without_usage_strips_the_usage_chunk(
    one: tuple[GatewayServer, UpstreamServer],
) -> None:
    gw, be = one
    with gw.client() as client:
        chunks = list(client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "hello " * 8
    assert all(c.usage is None for c in chunks)
    assert all(c.choices for c in chunks)  # the usage-only chunk was removed
    reasoning = [(c.choices[0].delta.model_extra or {}).get("reasoning_content") for c in chunks]
    assert "thinking" in reasoning
    assert be.behaviour.stats["bodies"][-1]["stream_options"] == {"include_usage": True}
    assert _ledger(gw)[-1] == ("a", MODEL, 1, "ok", 12, 8, 8)


def test_chat_streaming_with_usage(one: tuple[GatewayServer, UpstreamServer]) -> None:
    gw, _ = one
    with gw.client() as client:
        stream = client.chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        chunks = list(stream)
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert last.usage.completion_tokens == 8
    assert last.usage.prompt_tokens_details is not None
    assert last.usage.prompt_tokens_details.cached_tokens == 8


def test_tool_calls_streaming_and_not(one: tuple[GatewayServer, UpstreamServer]) -> None:
    gw, be = one
    with gw.client() as client:
        r = client.chat.completions.create(model=MODEL, messages=MESSAGES, tools=TOOLS)
        calls = r.choices[0].message.tool_calls
        assert calls is not None and calls[0].function.name == "get_weather"  # type: ignore[union-attr]
        assert json.loads(calls[0].function.arguments) == {"city": "Paris"}  # type: ignore[union-attr]
        assert r.choices[0].finish_reason == "tool_calls"
        chunks = list(
            client.chat.completions.create(model=MODEL, messages=MESSAGES, tools=TOOLS, stream=True)
        )
    args = "".join(
        tc.function.arguments or ""
        for c in chunks
        if c.choices
        for tc in c.choices[0].delta.tool_calls or []
        if tc.function is not None
    )
    assert json.loads(args) == {"city": "Paris"}
    assert be.behaviour.stats["bodies"][-1]["tools"] == TOOLS  # passed through untouched


def test_completions_and_models(one: tuple[GatewayServer, UpstreamServer]) -> None:
    gw, _ = one
    with gw.client() as client:
        r = client.completions.create(model=MODEL, prompt="Once upon a time")
        assert r.choices[0].text.startswith("hello")
        assert [m.id for m in client.models.list()] == [MODEL]
        chunks = list(client.completions.create(model=MODEL, prompt="Once", stream=True))
        assert "".join(c.choices[0].text for c in chunks if c.choices) == "hello " * 8


def test_unknown_fields_pass_through(one: tuple[GatewayServer, UpstreamServer]) -> None:
    gw, be = one
    body = {
        "model": MODEL,
        "messages": MESSAGES,
        "chat_template_kwargs": {"enable_thinking": False},
        "top_k": 20,
        "x_vendor": [1, 2.5, None],
    }
    r = httpx.post(gw.url + "/v1/chat/completions", json=body)
    assert r.status_code == 200
    assert r.headers["x-moerun-backend"] == "a" and r.headers["x-request-id"].startswith("req_")
    sent = be.behaviour.stats["bodies"][-1]
    assert {k: v for k, v in sent.items() if k != "model"} == {
        k: v for k, v in body.items() if k != "model"
    }


def test_streams_are_forwarded_as_they_arrive(
    upstream: Callable[..., UpstreamServer],
    gateway: Callable[..., GatewayServer],
    sqlite_url: str,
) -> None:
    be = upstream(name="slow", num_chunks=5, chunk_delay_s=0.15)
    gw = gateway(make_config([backend_entry("slow", be)], sqlite_url))
    import time

    with gw.client() as client:
        t0 = time.monotonic()
        stream = client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
        first = next(iter(stream))
        ttft = time.monotonic() - t0
        rest = list(stream)
        total = time.monotonic() - t0
    assert first.choices and ttft < 0.4  # the first chunk did not wait for the whole answer
    assert total > 0.7 and len(rest) >= 6
