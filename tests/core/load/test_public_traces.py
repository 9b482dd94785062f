"""Mooncake and Azure traces as workloads; the hit rate a workload's shared segments imply."""

from __future__ import annotations

import json
import random

import pytest

from moerun.core.load.prefix_reuse import implied_hit_rate
from moerun.core.load.public_traces import parse_azure_csv, parse_mooncake, scale_and_cap
from moerun.core.load.trace import TraceError
from moerun.core.load.workload import AgenticShape, Arrival, LengthDist, Workload


def mooncake_lines(rows: list[tuple[int, int, int, list[int]]]) -> list[str]:
    keys = ("timestamp", "input_length", "output_length", "hash_ids")
    return [json.dumps(dict(zip(keys, row, strict=True))) for row in rows]


def test_mooncake_blocks_share_by_hash_id() -> None:
    wl = parse_mooncake(
        mooncake_lines(
            [
                (0, 1200, 10, [7, 8, 9]),  # 512 + 512 + 176
                (1500, 1100, 20, [7, 8, 11]),  # shares two full blocks
                (3000, 700, 5, [7]),  # one full block, then 188 tokens of its own
            ]
        )
    )
    assert wl.arrival.kind == "trace"
    assert [s.start_s for s in wl.sessions] == [0.0, 1.5, 3.0]
    first, second, third = wl.sessions
    assert first.prompt_segments(0) == [("mc7", 512), ("mc8", 512), ("mc9/176", 176)]
    assert second.prompt_segments(0)[:2] == first.prompt_segments(0)[:2]
    assert third.input_tokens(0) == 700 and third.blocks == (("mc7", 512),)
    assert [s.turns[0].output_tokens for s in wl.sessions] == [10, 20, 5]
    # worked by hand: request 2 finds 1024 of 1100, request 3 finds 512 of 700
    assert implied_hit_rate(wl) == pytest.approx((1024 + 512) / (1200 + 1100 + 700))


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ('{"timestamp": 0, "input_length": 600, "output_length": 3, "hash_ids": [1, 2, 3]}',
         "need more than"),
        ('{"timestamp": -1, "input_length": 6, "output_length": 3}', "timestamp"),
        ('{"timestamp": 0, "input_length": 6, "output_length": 0}', "output_length"),
        ('{"timestamp": 0, "input_length": 6, "output_length": 2, "hash_ids": ["a"]}', "integers"),
    ],
)  # fmt: skip
def test_bad_mooncake_lines_name_the_line(row: str, message: str) -> None:
    with pytest.raises(TraceError, match=f"line 2: .*{message}"):
        parse_mooncake(['{"timestamp": 0, "input_length": 6, "output_length": 3}', row])


def test_azure_csv_times_and_lengths() -> None:
    wl = parse_azure_csv(
        [
            "TIMESTAMP,ContextTokens,GeneratedTokens",
            "2023-11-16 18:15:46.6805900,374,44",
            "2023-11-16 18:15:50.9951690,396,109",
            "2023-11-16 18:16:46.0000000,2048,0",
        ]
    )
    starts = [s.start_s for s in wl.sessions]
    assert starts[0] == 0.0
    assert starts[1] == pytest.approx(4.314579, abs=1e-6)
    assert starts[2] == pytest.approx(59.31941, abs=1e-6)
    assert [s.input_tokens(0) for s in wl.sessions] == [374, 396, 2048]
    assert [s.turns[0].output_tokens for s in wl.sessions] == [44, 109, 1]
    assert implied_hit_rate(wl) == 0.0
    with pytest.raises(TraceError, match="missing column"):
        parse_azure_csv(["time,in,out", "1,2,3"])
    with pytest.raises(TraceError, match="line 2: TIMESTAMP"):
        parse_azure_csv(["TIMESTAMP,ContextTokens,GeneratedTokens", "yesterday,3,4"])


def test_speedup_and_cap() -> None:
    rows = [(t * 1000, 100, 5, []) for t in (4, 0, 2, 6)]
    wl = scale_and_cap(parse_mooncake(mooncake_lines(rows)), speedup=2.0, max_requests=3)
    assert [s.start_s for s in wl.sessions] == [0.0, 1.0, 2.0]  # the first three, twice as fast
    with pytest.raises(ValueError):
        scale_and_cap(wl, speedup=0.0, max_requests=None)


def test_implied_hit_rate_of_agentic_sessions() -> None:
    # sessions of a 100-token system prompt and turns (new in, out): (10, 5), (20, 5), (20, 5)
    shape = AgenticShape(
        num_turns=LengthDist.fixed(3),
        system_tokens=100,
        first_input=LengthDist.fixed(10),
        tool_output=LengthDist.fixed(20),
        output=LengthDist.fixed(5),
    )
    wl = Workload.agentic(
        shape=shape, num_sessions=2, arrival=Arrival("closed", concurrency=1), rng=random.Random(0)
    )
    # prompts 110, 135, 160 per session; hits: session 1: 0, 115, 140; session 2: 100, 115, 140
    assert implied_hit_rate(wl) == pytest.approx((0 + 115 + 140 + 100 + 115 + 140) / (2 * 405))
