"""A Mooncake trace replayed against the emulator finds the prefix hits its hash_ids imply,
and `moerun simulate` on the same file predicts them."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from moerun.bench.results import read_results
from moerun.cli import main
from moerun.serve.emulator.app import build_emulator
from tests.serve.emulator_helpers import MODEL, UvicornThread, glm5_on_h200


def write_trace(path: Path, rng: random.Random) -> float:
    """40 requests over four families of shared blocks, each with blocks of its own; returns
    the hit rate the hashes imply (full 512-token blocks whose whole hash path came before)."""
    roots = [[f * 10 + j for j in range(rng.randint(2, 6))] for f in range(4)]
    seen: set[tuple[int, ...]] = set()
    next_id, t_ms, hit, total = 1000, 0, 0, 0
    lines = []
    for _ in range(40):
        root = rng.choice(roots)
        own = list(range(next_id, next_id + rng.randint(1, 3)))
        next_id += len(own)
        ids = root[: rng.randint(1, len(root))] + own
        n_in = 512 * (len(ids) - 1) + rng.randint(1, 512)  # the last block is partial, own
        for k in range(len(ids)):
            if tuple(ids[: k + 1]) not in seen:
                break
            hit += 512
        seen.update(tuple(ids[: k + 1]) for k in range(len(ids)))
        total += n_in
        row = {"timestamp": t_ms, "input_length": n_in, "output_length": rng.randint(5, 40),
               "hash_ids": ids}  # fmt: skip
        lines.append(json.dumps(row))
        t_ms += rng.randint(200, 900)
    path.write_text("\n".join(lines) + "\n")
    return hit / total


def test_mooncake_trace_hits_what_its_hashes_imply(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "mooncake.jsonl"
    implied = write_trace(trace, random.Random(5))
    assert 0.3 < implied < 0.8  # the trace really shares prefixes
    app = build_emulator(glm5_on_h200(), served_model=MODEL, time_scale=50.0)
    out = tmp_path / "r.json"
    with UvicornThread(app) as srv:
        assert main(["bench", srv.url, "--workload", str(trace), "--no-progress",
                     "--output", str(out)]) == 0  # fmt: skip
    (run,) = read_results(out).runs
    assert run.summary["num_completed"] == 40
    assert run.summary["workload_prefix_hit_rate"] == pytest.approx(implied)
    assert abs(run.summary["prefix_cache_hit_rate"] - implied) < 0.05  # type: ignore[operator]
    capsys.readouterr()
    sim = ["simulate", "--gpu", "h200_sxm", "--num-gpus", "8", "--workload", str(trace), "--json"]
    assert main(sim) == 0
    predicted = json.loads(capsys.readouterr().out)
    assert abs(predicted["prefix_cache_hit_rate"] - implied) < 0.05
    # a cap replays the first requests; a timed trace refuses a closed loop
    assert main([*sim, "--num-requests", "10", "--trace-speedup", "4"]) == 0
    assert json.loads(capsys.readouterr().out)["num_requests"] == 10
    assert main([*sim, "--concurrency", "2"]) == 2
    assert "drop --concurrency" in capsys.readouterr().err
