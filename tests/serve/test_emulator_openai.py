"""The emulator through the `openai` SDK over 127.0.0.1: chat, completions, streams, usage."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from moerun.serve.emulator.app import build_emulator
from tests.fixtures.servers import UvicornThread
from tests.serve.emulator_helpers import MODEL, emulator_server, glm5_on_h200


@pytest.fixture(scope="module")
def emulator() -> Iterator[UvicornThread]:
    app = build_emulator(
        glm5_on_h200(), served_model=MODEL, time_scale=20.0, default_output_tokens=12
    )
    with emulator_server(app) as srv:
        yield srv


@pytest.fixture
def client(emulator: UvicornThread) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=emulator.url + "/v1", api_key="x", max_retries=0) as c:
        yield c


def test_models_health_metrics(client: openai.OpenAI, emulator: UvicornThread) -> None:
    assert [m.id for m in client.models.list()] == [MODEL]
    assert httpx.get(emulator.url + "/health").status_code == 200
    client.completions.create(model=MODEL, prompt="one two three", max_tokens=2)
    text = httpx.get(emulator.url + "/metrics").text
    for name in (
        "vllm:num_requests_running",
        "vllm:num_requests_waiting",
        "vllm:kv_cache_usage_perc",
        "vllm:gpu_cache_usage_perc",
        "vllm:prefix_cache_queries_total",
        "vllm:prefix_cache_hits_total",
        "vllm:time_to_first_token_seconds_bucket",
    ):
        assert name in text


def test_chat_whole_with_reasoning(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "say something"}],
        max_tokens=8,
        extra_body={"ignore_eos": True},
    )
    assert r.system_fingerprint == "moerun-emulator-synthetic-text"
    assert r.usage is not None and r.usage.prompt_tokens == 2 and r.usage.completion_tokens == 8
    msg = r.choices[0].message
    reasoning = (msg.model_extra or {})["reasoning_content"]
    assert len(reasoning.split()) == 4 and len((msg.content or "").split()) == 4
    assert r.choices[0].finish_reason == "length"
    off = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "say something"}],
        max_tokens=8,
        extra_body={"chat_template_kwargs": {"enable_thinking": False}},
    )
    assert "reasoning_content" not in (off.choices[0].message.model_extra or {})
    assert len((off.choices[0].message.content or "").split()) == 8


def test_chat_stream_usage_and_cache(client: openai.OpenAI) -> None:
    prompt = " ".join(["word"] * 300)
    cached = []
    for _ in range(2):
        stream = client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": prompt}],
            max_tokens=6,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
        deltas = [c for c in chunks if c.choices and c.choices[0].delta]
        assert deltas[-1].choices[0].finish_reason == "length"
        usage = chunks[-1].usage
        assert usage is not None and usage.prompt_tokens == 300 and usage.completion_tokens == 6
        assert usage.prompt_tokens_details is not None
        cached.append(usage.prompt_tokens_details.cached_tokens)
    assert cached[0] == 0 and cached[1] == 256  # whole 64-token pages of the repeated prompt


def test_completions_lengths_and_stop(client: openai.OpenAI) -> None:
    r = client.completions.create(model=MODEL, prompt="a b c d")
    assert r.usage is not None and r.usage.completion_tokens == 12  # the synthetic EOS
    assert r.choices[0].finish_reason == "stop"
    full = client.completions.create(
        model=MODEL,
        prompt="a b c d",
        max_tokens=30,
        extra_body={"ignore_eos": True, "min_tokens": 30},
    )
    words = full.choices[0].text.split()
    assert len(words) == 30
    stop_word = words[5]
    cut = client.completions.create(
        model=MODEL,
        prompt="a b c d",
        max_tokens=30,
        stop=[stop_word],
        extra_body={"ignore_eos": True},
    )
    assert cut.choices[0].finish_reason == "stop"
    assert stop_word not in cut.choices[0].text and len(cut.choices[0].text) < len(
        full.choices[0].text
    )
    text = "".join(
        c.choices[0].text
        for c in client.completions.create(model=MODEL, prompt="a b c d", max_tokens=5, stream=True)
        if c.choices
    )
    assert text == " ".join(words[:5])


def test_errors_are_openai_shaped(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="nope", prompt="x", max_tokens=1)
    with pytest.raises(openai.BadRequestError, match="maximum context length"):
        client.completions.create(model=MODEL, prompt="x", max_tokens=10_000_000)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=MODEL, messages=[], max_tokens=1)
