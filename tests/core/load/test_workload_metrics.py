"""Workloads, traces and the shared metric definitions."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from moerun.core.load.metrics import RequestResult, Slo, distribution, summarize
from moerun.core.load.trace import TraceError, parse_trace
from moerun.core.load.workload import AgenticShape, Arrival, LengthDist, Session, Turn, Workload


def test_agentic_prompts_grow_and_share_the_previous_turn() -> None:
    wl = Workload.agentic(
        shape=AgenticShape(),
        num_sessions=3,
        arrival=Arrival("closed", concurrency=1),
        rng=random.Random(1),
    )
    s = wl.sessions[0]
    assert len(s.turns) >= 3
    for k in range(1, len(s.turns)):
        prev, cur = s.prompt_segments(k - 1), s.prompt_segments(k)
        assert cur[: len(prev)] == prev  # the new prompt continues the old one
        assert cur[len(prev)] == (f"s0.t{k - 1}.out", s.turns[k - 1].output_tokens)
        assert (
            s.input_tokens(k)
            == s.input_tokens(k - 1) + s.turns[k - 1].output_tokens + s.turns[k].new_input_tokens
        )
    assert s.prompt_segments(0)[0] == ("agent-sys0", 8000)


def test_same_seed_same_workload() -> None:
    def make(seed: int) -> Workload:
        return Workload.single_turn(
            input_len=LengthDist("lognormal", 2000),
            output_len=LengthDist("uniform", 100, 50, 150),
            num_requests=50,
            arrival=Arrival("poisson", rate_per_s=2.0),
            rng=random.Random(seed),
        )

    assert make(3) == make(3)
    assert make(3) != make(4)


def test_poisson_rate_is_respected_on_average() -> None:
    wl = Workload.single_turn(
        input_len=LengthDist.fixed(10),
        output_len=LengthDist.fixed(1),
        num_requests=4000,
        arrival=Arrival("poisson", rate_per_s=5.0),
        rng=random.Random(0),
    )
    last = wl.sessions[-1].start_s
    assert last is not None and 4000 / last == pytest.approx(5.0, rel=0.05)


def test_bad_arrivals_are_refused() -> None:
    with pytest.raises(ValueError, match="positive rate"):
        Arrival("poisson", rate_per_s=-1.0)
    with pytest.raises(ValueError, match="concurrency"):
        Arrival("closed", concurrency=0)


def test_trace_sessions_continue_their_context() -> None:
    lines = [
        json.dumps(
            {
                "session_id": "a",
                "input_tokens": 1000,
                "output_tokens": 100,
                "prefix_id": "sys",
                "prefix_tokens": 800,
            }
        ),
        json.dumps({"session_id": "a", "input_tokens": 1500, "output_tokens": 50, "think_s": 1.5}),
        json.dumps({"input_tokens": 300, "output_tokens": 10}),
    ]
    wl = parse_trace(lines, concurrency=2)
    assert wl.arrival.kind == "closed" and wl.num_requests == 3
    a = wl.sessions[0]
    assert a.turns == (Turn(200, 100, 0.0), Turn(400, 50, 1.5))
    assert a.input_tokens(1) == 1500
    assert a.prompt_segments(0)[0] == ("prefix:sys", 800)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{", "not JSON"),
        ('{"input_tokens": 10}', "output_tokens"),
        ('{"input_tokens": -1, "output_tokens": 3}', "non-negative"),
        ('{"input_tokens": 1, "output_tokens": 3, "colour": 1}', "unknown field"),
    ],
)
def test_bad_trace_lines_name_the_line(line: str, message: str) -> None:
    with pytest.raises(TraceError, match=message):
        parse_trace(["", line])


def test_trace_turn_shorter_than_its_context_is_refused() -> None:
    lines = [
        '{"session_id": 1, "input_tokens": 100, "output_tokens": 50}',
        '{"session_id": 1, "input_tokens": 120, "output_tokens": 5}',
    ]
    with pytest.raises(TraceError, match=r"line 2.*fewer than the 150"):
        parse_trace(lines)


def test_weighted_percentiles_equal_the_expanded_sample() -> None:
    rng = np.random.default_rng(0)
    v = rng.random(40) * 100
    w = rng.integers(1, 9, 40)
    got, want = distribution(v, w.astype(float)), distribution(np.repeat(v, w))
    for key in want:
        assert got[key] == pytest.approx(want[key])


def test_tpot_excludes_the_first_token_and_goodput_counts_slo() -> None:
    fast = RequestResult(
        0, start_s=0.0, end_s=1.1, input_tokens=100, output_tokens=11, first_token_s=0.1
    )
    slow = RequestResult(
        1, start_s=0.0, end_s=3.0, input_tokens=100, output_tokens=11, first_token_s=2.0
    )
    failed = RequestResult(2, start_s=0.0, end_s=0.5, input_tokens=100, output_tokens=0, ok=False)
    assert fast.tpot_s == pytest.approx(0.1)
    s = summarize([fast, slow, failed], num_gpus=8, slo=Slo(ttft_ms=500))
    assert s["num_failed"] == 1 and s["num_completed"] == 2
    assert s["output_tok_per_s"] == pytest.approx(22 / 3.0)
    assert s["goodput_req_per_s"] == pytest.approx(1 / 3.0)
    assert s["ttft_ms"]["p50"] == pytest.approx(1050.0)  # type: ignore[index]


def test_session_without_system_prompt() -> None:
    s = Session(7, (Turn(10, 5), Turn(3, 2)))
    assert s.prompt_segments(1) == [("s7.t0.in", 10), ("s7.t0.out", 5), ("s7.t1.in", 3)]
