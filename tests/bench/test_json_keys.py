"""`moerun bench --json`: the documented keys, and values worked from the results file's
requests here (numpy over the raw timings), not by moerun's metrics code."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from moerun.bench.results import read_results
from moerun.cli import main
from tests.bench.conftest import ThreadServer

# the keys README.md documents for `--json`, one object per run
RUN_KEYS = {
    "label", "workload",
    "num_requests", "num_completed", "num_failed", "duration_s",
    "req_per_s", "input_tok_per_s", "output_tok_per_s", "total_tok_per_s",
    "input_tok_per_s_per_gpu", "output_tok_per_s_per_gpu",
    "total_input_tokens", "total_output_tokens", "total_cached_tokens",
    "prefix_cache_hit_rate", "workload_prefix_hit_rate",
    "ttft_ms", "tpot_ms", "itl_ms", "e2e_ms",
}  # fmt: skip
SLO_KEYS = {"goodput_req_per_s", "slo_attainment", "slo"}
DIST_KEYS = {"mean", "p50", "p90", "p99"}
SMALL = ["--isl", "32", "--osl", "4", "--num-requests", "12", "--no-progress", "--json"]


def _dist(values: list[float]) -> dict[str, float]:
    a = np.asarray(values)
    return {"mean": a.mean(), **{f"p{q}": np.percentile(a, q) for q in (50, 90, 99)}}


def test_one_run_prints_the_documented_keys(
    fast_server: ThreadServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.json"
    code = main(["bench", fast_server.url, *SMALL, "--concurrency", "3", "--num-gpus", "2",
                 "--gpu", "h200_sxm", "--slo-ttft-ms", "1000", "--output", str(out)])  # fmt: skip
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == RUN_KEYS | SLO_KEYS
    for key in ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms"):
        assert set(doc[key]) == DIST_KEYS
    assert doc["slo"] == {"ttft_ms": 1000.0, "tpot_ms": None, "e2e_ms": None}
    assert doc["label"] == "concurrency 3" and doc["workload"]["concurrency"] == 3

    (run,) = read_results(out).runs
    recs = run.records
    dur = max(r.end_s for r in recs) - min(r.start_s for r in recs)
    n_in, n_out = sum(r.input_tokens for r in recs), sum(r.output_tokens for r in recs)
    assert (doc["num_requests"], doc["num_completed"], doc["num_failed"]) == (12, 12, 0)
    assert (doc["total_input_tokens"], doc["total_output_tokens"]) == (n_in, n_out)
    assert n_out == 12 * 4 and doc["total_cached_tokens"] == 0
    expect = {
        "duration_s": dur,
        "req_per_s": 12 / dur,
        "input_tok_per_s": n_in / dur,
        "output_tok_per_s": n_out / dur,
        "total_tok_per_s": (n_in + n_out) / dur,
        "input_tok_per_s_per_gpu": n_in / dur / 2,  # the deployment's 2 GPUs
        "output_tok_per_s_per_gpu": n_out / dur / 2,
        "goodput_req_per_s": 12 / dur,  # every TTFT is ~20 ms, under the 1 s bound
        "slo_attainment": 1.0,
        "prefix_cache_hit_rate": 0.0,
        "workload_prefix_hit_rate": 0.0,
    }
    for key, value in expect.items():
        assert doc[key] == pytest.approx(value, rel=1e-4), key
    ttft = [(r.chunk_s[0] - r.start_s) * 1e3 for r in recs]
    tpot = [(r.end_s - r.chunk_s[0]) * 1e3 / (r.output_tokens - 1) for r in recs]
    gaps = [g * 1e3 for r in recs for g in np.diff(r.chunk_s)]
    e2e = [(r.end_s - r.start_s) * 1e3 for r in recs]
    for key, values in (("ttft_ms", ttft), ("tpot_ms", tpot), ("itl_ms", gaps), ("e2e_ms", e2e)):
        assert doc[key] == pytest.approx(_dist(values), abs=0.01), key
    # the server's fixed timing, TTFT 20 ms and 5 ms between chunks, give or take the
    # client's receive jitter (a gap can arrive a little early when the previous one was late)
    assert 15.0 <= doc["ttft_ms"]["p50"] < 40.0 and 4.0 <= doc["itl_ms"]["p50"] < 15.0


def test_a_sweep_prints_a_list_and_no_sample_prints_null(
    fast_server: ThreadServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # one-token answers have no TPOT and no gaps between chunks: null, not NaN (not JSON)
    code = main(["bench", fast_server.url, "--isl", "32", "--osl", "1", "--num-requests", "4",
                 "--no-progress", "--json", "--sweep-concurrency", "1,2",
                 "--output", str(tmp_path / "r.json")])  # fmt: skip
    assert code == 0
    text = capsys.readouterr().out
    assert "NaN" not in text
    docs = json.loads(text)
    assert [d["label"] for d in docs] == ["concurrency 1", "concurrency 2"]
    for doc in docs:
        assert set(doc) == RUN_KEYS
        assert doc["tpot_ms"] == dict.fromkeys(DIST_KEYS)
        assert doc["itl_ms"] == dict.fromkeys(DIST_KEYS)
        assert doc["ttft_ms"]["mean"] > 0
