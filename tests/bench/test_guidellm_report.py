"""`moerun bench --guidellm-report`: GuideLLM 0.8's report structure and metric definitions.

The statistics are checked against numbers GuideLLM 0.8.1 itself computed (the fixtures in
tests/fixtures/imports, written by GuideLLM against `moerun emulate`); the structure against the
key paths of such a file; the round trip through moerun's own GuideLLM importer against the
results file of the same bench run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from moerun.bench.guidellm_report import guidellm_report, write_guidellm_report
from moerun.bench.imports import read_imported
from moerun.bench.imports.guidellm import parse_guidellm
from moerun.bench.records import RequestRecord
from moerun.bench.results import BenchResults, RunResult, read_results
from moerun.catalog.perf.calibration import calibration_for
from moerun.cli import main
from moerun.core.sim.build import SimOptions
from moerun.errors import UsageError
from moerun.serve.emulator.app import build_emulator
from tests.serve.emulator_helpers import MODEL, emulator_server, glm5_on_h200

FIXTURES = Path(__file__).parents[1] / "fixtures" / "imports"
GUIDELLM = sorted(FIXTURES.glob("guidellm-isl*.json"))
METRICS = (
    "request_latency",
    "prompt_token_count",
    "output_token_count",
    "time_to_first_token_ms",
    "inter_token_latency_ms",
    "time_per_output_token_ms",
)
LOAD = ["--isl", "256", "--osl", "16", "--num-requests", "8", "--sweep-concurrency", "1,4"]


def key_paths(doc: Any, prefix: str = "") -> set[str]:
    """Every key path of a JSON document, list positions written as []."""
    out = {prefix} if prefix else set()
    if isinstance(doc, dict):
        for k, v in doc.items():
            out |= key_paths(v, f"{prefix}.{k}")
    elif isinstance(doc, list):
        out.add(prefix + "[]")
        for v in doc:
            out |= key_paths(v, prefix + "[]")
    return out


def _records(bench: dict[str, Any]) -> tuple[RequestRecord, ...]:
    """GuideLLM's requests as moerun records: the first and last token as the chunks."""
    out = []
    for i, req in enumerate(bench["requests"]["successful"]):
        t = req["info"]["timings"]
        n_in, n_out = req["input_metrics"]["text_tokens"], req["output_metrics"]["text_tokens"]
        chunks = (t["first_token_iteration"], t["last_token_iteration"])
        out.append(RequestRecord(i, i, 0, t["request_start"], t["request_end"], chunks,
                                 n_in, n_out, 0, n_in, n_out))  # fmt: skip
    return tuple(out)


@pytest.mark.parametrize("path", GUIDELLM, ids=lambda p: p.name)
def test_metrics_are_the_ones_guidellm_computed(path: Path) -> None:
    doc = json.loads(path.read_text())
    runs = [RunResult(f"c{b['config']['strategy']['streams']}",
                      {"concurrency": b["config"]["strategy"]["streams"]}, _records(b), {}, 0.0)
            for b in doc["benchmarks"]]  # fmt: skip
    res = BenchResults("http://127.0.0.1:9", "chat", "glm-5.1", "words", "s", None, None, (*runs,))
    ours = guidellm_report(res, "r.json")
    for mine, theirs in zip(ours["benchmarks"], doc["benchmarks"], strict=True):
        assert mine["metrics"]["request_totals"] == theirs["metrics"]["request_totals"]
        for name in METRICS:
            got, want = mine["metrics"][name]["successful"], theirs["metrics"][name]["successful"]
            assert got["count"] == want["count"], name
            for stat in ("mean", "median", "total_sum"):
                assert got[stat] == pytest.approx(want[stat], rel=1e-9), (name, stat)
            assert got["percentiles"] == pytest.approx(want["percentiles"], rel=1e-9), name
            assert mine["metrics"][name]["errored"] == theirs["metrics"][name]["errored"]
        # first request start to last request end; GuideLLM ends at its scheduler's end,
        # a few ms either side of the last request's
        t = [r["info"]["timings"] for r in theirs["requests"]["successful"]]
        span = max(x["request_end"] for x in t) - min(x["request_start"] for x in t)
        assert mine["duration"] == pytest.approx(span, rel=1e-12)
        assert mine["duration"] == pytest.approx(theirs["duration"], abs=0.01)


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """One sweep against `moerun emulate` (20x real time): its results and GuideLLM report."""
    tmp = tmp_path_factory.mktemp("bench")
    dep = glm5_on_h200()
    options = SimOptions(params=calibration_for(dep.gpu.id, dep.engine.name).params)
    app = build_emulator(dep, served_model=MODEL, options=options, time_scale=20.0)
    out, report = tmp / "r.json", tmp / "guidellm.json"
    with emulator_server(app) as srv:
        code = main(["bench", srv.url, *LOAD, "--no-progress", "--output", str(out),
                     "--guidellm-report", str(report)])  # fmt: skip
    assert code == 0
    yield out, report


def test_round_trip_through_the_guidellm_importer(bench_run: tuple[Path, Path]) -> None:
    out, report = bench_run
    runs = read_results(out).runs
    imported = read_imported(report)
    assert imported is not None and imported.tool == "guidellm" and imported.notes == ()
    assert imported.served_model == MODEL
    assert [r.workload["concurrency"] for r in imported.runs] == [1, 4]
    for run, back in zip(runs, imported.runs, strict=True):
        assert (back.workload["isl"], back.workload["osl"]) == (256, 16)
        s, b = run.summary, back.summary
        for key in ("num_requests", "num_completed", "num_failed", "total_output_tokens"):
            assert b[key] == s[key], key
        for key in ("ttft_ms", "tpot_ms", "e2e_ms"):
            # the results file keeps µs, GuideLLM's Unix-second floats ~0.2 µs
            assert b[key] == pytest.approx(s[key], abs=2e-3), key
        for key in ("duration_s", "req_per_s", "output_tok_per_s", "input_tok_per_s"):
            assert b[key] == pytest.approx(s[key], rel=1e-6), key


def test_aggregates_alone_give_the_same_means(bench_run: tuple[Path, Path]) -> None:
    # what a reader of GuideLLM's summary metrics alone (no per-request list) sees
    out, report = bench_run
    doc = json.loads(report.read_text())
    for bench in doc["benchmarks"]:
        bench["requests"] = {"successful": [], "errored": [], "incomplete": []}
    back = parse_guidellm(doc)
    assert len(back.notes) == 2  # each run: "GuideLLM kept a sample ... aggregates used"
    for run, imported in zip(read_results(out).runs, back.runs, strict=True):
        s, b = run.summary, imported.summary
        # fixed output lengths: GuideLLM's token-weighted ITL mean is moerun's TPOT mean
        assert b["tpot_ms"]["mean"] == pytest.approx(s["tpot_ms"]["mean"], abs=2e-3)  # type: ignore[index]
        assert b["ttft_ms"]["mean"] == pytest.approx(s["ttft_ms"]["mean"], abs=2e-3)  # type: ignore[index]
        assert b["output_tok_per_s"] == pytest.approx(s["output_tok_per_s"], rel=1e-6)


def test_every_key_path_is_one_guidellm_writes(bench_run: tuple[Path, Path]) -> None:
    _, report = bench_run
    ours = key_paths(json.loads(report.read_text()))
    theirs = key_paths(json.loads((FIXTURES / "guidellm-isl512.json").read_text()))
    assert ours - theirs == set()
    # and the parts a reader needs are all there
    for path in (".benchmarks[].metrics.time_to_first_token_ms.successful.percentiles.p99",
                 ".benchmarks[].requests.successful[].info.timings.first_token_iteration",
                 ".config.spec.data[].prompt_tokens", ".metadata.guidellm_version"):  # fmt: skip
        assert path in ours


def test_timestamps_are_one_endpoint_clock(bench_run: tuple[Path, Path]) -> None:
    # the emulator runs 20x faster than real time: every time is in its (20x longer) seconds,
    # the first run anchored at its wall-clock start, the second 20x its wall-clock gap later
    out, report = bench_run
    runs = read_results(out).runs
    doc = json.loads(report.read_text())
    start0, start1 = (r.started_unix_s for r in runs)
    assert start0 is not None and start1 is not None
    anchors = (start0, start0 + (start1 - start0) * 20.0)
    for run, bench, t0 in zip(runs, doc["benchmarks"], anchors, strict=True):
        first = min(r.start_s for r in run.records)
        assert bench["start_time"] == pytest.approx(t0 + first, abs=1e-5)
        assert bench["duration"] == pytest.approx(run.summary["duration_s"], abs=1e-5)
    assert doc["benchmarks"][0]["end_time"] <= doc["benchmarks"][1]["start_time"]


def test_rates_and_bursts_name_guidellms_strategies() -> None:
    rec = RequestRecord(0, 0, 0, 0.0, 0.3, (0.1, 0.2), 16, 3, 0, 16, 3)
    bad = RequestRecord(1, 1, 0, 0.0, 0.05, (), 16, 0, 0, 16, 3, ok=False, error="HTTP 500")
    flags = ({"workload": "fixed", "isl": 16, "osl": 3, "request_rate": 2.5},
             {"workload": "fixed", "isl": 16, "osl": 3, "request_rate": "inf"})  # fmt: skip
    runs = tuple(RunResult("r", f, (rec, bad), {}, 0.3, num_unfinished=2) for f in flags)
    res = BenchResults("http://127.0.0.1:9", "completions", "m", "words", "s", None, None, runs)
    doc = guidellm_report(res, "r.json")
    assert [b["config"]["strategy"] for b in doc["benchmarks"]] == [
        {"type_": "poisson", "rate": 2.5},
        {"type_": "throughput"},
    ]
    assert doc["config"]["spec"]["backend"]["request_format"] == "/v1/completions"
    assert "profile" not in doc["config"]["spec"]  # not one GuideLLM profile
    m = doc["benchmarks"][0]["metrics"]
    assert m["request_totals"] == {"successful": 1, "errored": 1, "incomplete": 2, "total": 4}
    # worked by hand: TTFT 100 ms; TPOT (200 - 0) / 3 tokens; ITL (200 - 100) / 2 gaps
    assert m["time_to_first_token_ms"]["successful"]["mean"] == pytest.approx(100.0)
    assert m["time_per_output_token_ms"]["successful"]["mean"] == pytest.approx(200 / 3)
    assert m["time_per_output_token_ms"]["successful"]["count"] == 3
    assert m["inter_token_latency_ms"]["successful"]["mean"] == pytest.approx(50.0)
    assert m["inter_token_latency_ms"]["successful"]["count"] == 2
    # the failed request: a latency, no first token
    assert m["request_latency"]["errored"]["mean"] == pytest.approx(0.05)
    assert m["time_to_first_token_ms"]["errored"]["count"] == 0
    (err,) = doc["benchmarks"][0]["requests"]["errored"]
    assert (
        err["info"]["error"] == "HTTP 500"
        and err["info"]["timings"]["first_token_iteration"] is None
    )
    back = parse_guidellm(doc)
    assert (
        back.runs[0].workload["request_rate"] == 2.5
        and back.runs[1].workload["request_rate"] == "inf"
    )


def test_unwritable_report_path_fails_before_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.json"
    report = tmp_path / "missing" / "g.json"
    # no server: the path is checked before the endpoint is contacted
    code = main(["bench", "http://127.0.0.1:9", "--num-requests", "1", "--no-progress",
                 "--output", str(out), "--guidellm-report", str(report)])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--guidellm-report" in err and "does not exist" in err
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_leaves_nothing(tmp_path: Path) -> None:
    rec = RequestRecord(0, 0, 0, 0.0, 0.3, (0.1, 0.2), 16, 3, 0, 16, 3)
    run = RunResult("c1", {"concurrency": 1}, (rec,), {}, 0.3)
    res = BenchResults("http://127.0.0.1:9", "chat", "m", "words", "s", None, None, (run,))
    (tmp_path / "g.json").mkdir()  # a folder where the file should go: the rename fails
    with pytest.raises(UsageError, match=r"--guidellm-report .*g\.json: cannot write it"):
        write_guidellm_report(tmp_path / "g.json", res)
    assert [p.name for p in tmp_path.iterdir()] == ["g.json"] and (tmp_path / "g.json").is_dir()
    write_guidellm_report(tmp_path / "ok.json", res)
    assert json.loads((tmp_path / "ok.json").read_text())["benchmarks"][0]["duration"] == 0.3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.json", "ok.json"]
