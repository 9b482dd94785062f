"""The emulator's parts: clocks, output planning, prefix keys, /metrics format."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import pytest

from moerun.core.deploy.mtp import MTP_OFF
from moerun.core.load.synthetic_text import (
    count_tokens,
    output_words,
    prompt_segments,
    segment_words,
)
from moerun.core.perf.step_time import StepParams
from moerun.core.sim.build import SimOptions, build_replica
from moerun.serve.emulator.clock import ScaledClock, run_virtual
from moerun.serve.emulator.engine import EmulatedEngine
from moerun.serve.emulator.generation import Limits, RequestError, plan
from moerun.serve.emulator.metrics import Histogram
from moerun.serve.emulator.wire import ChatRequest, CompletionRequest
from tests.conftest import make_deployment

LIMITS = Limits(max_context=1000, block_tokens=64, default_output_tokens=50, thinking_model=True)


def test_virtual_time_jumps() -> None:
    async def main() -> float:
        clock = ScaledClock(1.0, source=asyncio.get_running_loop().time)
        await asyncio.gather(clock.sleep_until(3600.0), asyncio.sleep(10.0))
        return clock.now()

    t0 = time.monotonic()
    assert run_virtual(main()) == pytest.approx(3600.0)
    assert time.monotonic() - t0 < 1.0


def test_scaled_clock_runs_faster() -> None:
    async def main() -> float:
        clock = ScaledClock(100.0)
        await clock.sleep_until(5.0)
        return clock.now()

    t0 = time.monotonic()
    assert asyncio.run(main()) >= 5.0
    assert time.monotonic() - t0 < 0.5


def chat(**kw: object) -> ChatRequest:
    msgs = kw.pop("messages", [{"role": "user", "content": "one two three"}])
    return ChatRequest.model_validate({"model": "m", "messages": msgs, **kw})


def test_output_lengths() -> None:
    assert plan(chat(), LIMITS).output_tokens == 50  # the synthetic EOS
    assert plan(chat(max_tokens=20), LIMITS).output_tokens == 20
    assert plan(chat(max_tokens=200), LIMITS).output_tokens == 50
    assert plan(chat(max_tokens=200, ignore_eos=True), LIMITS).output_tokens == 200
    assert plan(chat(max_tokens=200, min_tokens=120), LIMITS).output_tokens == 120
    assert plan(chat(ignore_eos=True), LIMITS).output_tokens == 997  # up to the context
    p = plan(chat(max_tokens=10), LIMITS)
    assert p.reasoning_tokens == 5 and p.prompt_tokens == 3
    no_think = chat(max_tokens=10, chat_template_kwargs={"enable_thinking": False})
    assert plan(no_think, LIMITS).reasoning_tokens == 0
    comp = CompletionRequest.model_validate({"model": "m", "prompt": "a b", "max_tokens": 4})
    assert plan(comp, LIMITS).reasoning_tokens == 0 and plan(comp, LIMITS).output_key is None
    with pytest.raises(RequestError, match="maximum context length"):
        plan(chat(max_tokens=998), LIMITS)
    with pytest.raises(RequestError, match="empty"):
        plan(chat(messages=[{"role": "user", "content": ""}]), LIMITS)


def test_a_turn_finds_the_previous_prompt_and_answer_cached() -> None:
    sys_words = segment_words("sys", 150)
    first = plan(
        chat(
            messages=[
                {"role": "system", "content": " ".join(sys_words)},
                {"role": "user", "content": "what now"},
            ],
            max_tokens=7,
        ),
        LIMITS,
    )
    answer = " ".join(output_words(first.offset, 0, 7))
    second = plan(
        chat(
            messages=[
                {"role": "system", "content": " ".join(sys_words)},
                {"role": "user", "content": "what now"},
                {"role": "assistant", "content": answer},
                {"role": "user", "content": "and then"},
            ],
            max_tokens=3,
        ),
        LIMITS,
    )
    n = len(first.segments)
    assert second.segments[:n] == first.segments
    assert second.segments[n] == (first.output_key, 7)
    assert second.prompt_tokens == first.prompt_tokens + 7 + 2


def test_prompt_segments_share_whole_blocks() -> None:
    a = segment_words("x", 150)
    b = a[:100] + segment_words("y", 50)
    sa, _ = prompt_segments([(a, False)], 64)
    sb, _ = prompt_segments([(b, False)], 64)
    assert sa[0] == sb[0] and sa[1] != sb[1]
    assert sum(n for _, n in sa) == 150 == count_tokens(" ".join(a))


def test_metrics_exposition_parses() -> None:
    parser = pytest.importorskip("prometheus_client.parser")
    from moerun.serve.emulator.app import build_emulator
    from moerun.serve.emulator.metrics import render
    from tests.serve.emulator_helpers import glm5_on_h200

    app = build_emulator(glm5_on_h200(), served_model="glm-5.1")
    hist = Histogram()
    hist.observe(0.3)
    families = {
        f.name: f
        for f in parser.text_string_to_metric_families(render(app.engine, "glm-5.1", hist))
    }
    assert families["vllm:num_requests_running"].type == "gauge"
    assert families["vllm:prefix_cache_hits"].type == "counter"
    ttft = families["vllm:time_to_first_token_seconds"]
    assert any(s.name.endswith("_count") and s.value == 1 for s in ttft.samples)


def test_the_request_overhead_delays_what_the_client_receives() -> None:
    dep = make_deployment("glm-5.1-fp8", mtp=MTP_OFF, max_context=8192)
    params = StepParams(step_overhead_s=0.01)

    async def first_and_last(overhead_s: float) -> tuple[float, float]:
        clock = ScaledClock(1.0, source=asyncio.get_running_loop().time)
        opts = SimOptions(params=replace(params, request_overhead_s=overhead_s))
        engine = EmulatedEngine(build_replica(dep, opts, track_tokens=True), clock)
        handle = engine.submit((("p", 512),), 20)
        first = last = None
        while True:
            d = await handle.queue.get()
            if d.num_tokens and first is None:
                first = clock.now()
            if d.finished:
                last = clock.now()
                break
        assert first is not None
        return first, last

    f0, l0 = run_virtual(first_and_last(0.0))
    f1, l1 = run_virtual(first_and_last(0.3))
    # every token arrives 0.3 s later: TTFT and end-to-end grow by it, TPOT does not change
    assert f1 - f0 == pytest.approx(0.3, abs=1e-6)
    assert l1 - f1 == pytest.approx(l0 - f0, abs=1e-6)
