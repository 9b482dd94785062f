"""Other tools' results in moerun's metrics: GuideLLM (a file GuideLLM 0.8.1 wrote against
`moerun emulate`) and `vllm bench serve` (the key layout of vllm/benchmarks/serve.py)."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pytest

from moerun.bench.imports import read_imported
from moerun.bench.imports.detect import parse_document
from moerun.cli import main
from moerun.commands.calibration_inputs import load_runs

FIXTURES = Path(__file__).parents[1] / "fixtures" / "imports"
GUIDELLM = sorted(FIXTURES.glob("guidellm-isl*.json"))
DEPLOYMENT = ["--model", "glm-5.1", "--gpu", "h200_sxm", "--num-gpus", "8"]
# measured on `moerun emulate --time-scale 0.1` (scripts/make_guidellm_fixture.py)
TIME_SCALE = 0.1


def test_guidellm_runs_are_recomputed_with_moerun_definitions() -> None:
    path = FIXTURES / "guidellm-isl512.json"
    imported = read_imported(path)
    assert imported is not None and imported.tool == "guidellm"
    assert imported.served_model == "glm-5.1"
    assert [r.workload["concurrency"] for r in imported.runs] == [4, 16]
    doc = json.loads(path.read_text())
    for run, bench in zip(imported.runs, doc["benchmarks"], strict=True):
        assert run.workload["workload"] == "fixed"
        assert (run.workload["isl"], run.workload["osl"]) == (512, 64)
        reqs = bench["requests"]["successful"]
        assert run.summary["num_completed"] == len(reqs) == run.workload["num_requests"]
        t = [r["info"]["timings"] for r in reqs]
        # worked from the raw timings here: TTFT = first token - start; TPOT excludes the first
        ttft = [(x["first_token_iteration"] - x["request_start"]) * 1e3 for x in t]
        tpot = [
            (x["last_token_iteration"] - x["first_token_iteration"])
            * 1e3
            / (r["output_metrics"]["text_tokens"] - 1)
            for x, r in zip(t, reqs, strict=True)
        ]
        span = max(x["last_token_iteration"] for x in t) - min(x["request_start"] for x in t)
        out = sum(r["output_metrics"]["text_tokens"] for r in reqs)
        assert run.summary["ttft_ms"]["p50"] == pytest.approx(np.percentile(ttft, 50))  # type: ignore[index]
        assert run.summary["tpot_ms"]["p99"] == pytest.approx(np.percentile(tpot, 99))  # type: ignore[index]
        assert run.summary["output_tok_per_s"] == pytest.approx(out / span)
        assert run.summary["prefix_cache_hit_rate"] == 0.0
        # GuideLLM's own ITL is moerun's TPOT (first token excluded): the means agree
        itl = bench["metrics"]["inter_token_latency_ms"]["successful"]["mean"]
        assert run.summary["tpot_ms"]["mean"] == pytest.approx(itl, rel=1e-6)  # type: ignore[index]


def test_time_scale_converts_an_emulator_run() -> None:
    imported = read_imported(FIXTURES / "guidellm-isl512.json")
    assert imported is not None
    scaled = imported.time_scaled(TIME_SCALE)
    a, b = imported.runs[0].summary, scaled.runs[0].summary
    assert b["ttft_ms"]["p50"] == pytest.approx(a["ttft_ms"]["p50"] * TIME_SCALE)  # type: ignore[index]
    assert b["output_tok_per_s"] == pytest.approx(a["output_tok_per_s"] / TIME_SCALE)  # type: ignore[operator]
    assert b["num_completed"] == a["num_completed"]


def test_vllm_bench_serve_result(tmp_path: Path) -> None:
    # the keys `vllm bench serve --save-result --save-detailed` writes (vllm/benchmarks/serve.py)
    doc = {
        "date": "20261203-120000", "endpoint_type": "openai-chat", "backend": "openai-chat",
        "label": None, "model_id": "zai-org/GLM-5.1-FP8", "tokenizer_id": "zai-org/GLM-5.1-FP8",
        "num_prompts": 100, "request_rate": "inf", "burstiness": 1.0, "max_concurrency": 16,
        "duration": 50.0, "completed": 98, "failed": 2, "total_input_tokens": 98 * 1024,
        "total_output_tokens": 98 * 128, "request_throughput": 1.96, "request_goodput": None,
        "output_throughput": 250.88, "total_token_throughput": 2257.92,
        "mean_ttft_ms": 310.0, "median_ttft_ms": 300.0, "std_ttft_ms": 20.0, "p99_ttft_ms": 420.0,
        "mean_tpot_ms": 45.0, "median_tpot_ms": 44.0, "std_tpot_ms": 2.0, "p99_tpot_ms": 51.0,
        "mean_itl_ms": 45.0, "median_itl_ms": 43.0, "std_itl_ms": 5.0, "p99_itl_ms": 80.0,
        "mean_e2el_ms": 6000.0, "median_e2el_ms": 5900.0, "std_e2el_ms": 9.0,
        "p99_e2el_ms": 6500.0,
        "input_lens": [1024] * 100, "output_lens": [128] * 100,
    }  # fmt: skip
    imported = parse_document(doc, "vllm.json")
    assert imported is not None and imported.tool == "vllm bench serve"
    (run,) = imported.runs
    assert run.workload == {"workload": "fixed", "isl": 1024, "osl": 128, "concurrency": 16,
                            "num_requests": 100}  # fmt: skip
    s = run.summary
    assert s["num_failed"] == 2 and s["output_tok_per_s"] == pytest.approx(98 * 128 / 50)
    ttft = s["ttft_ms"]
    assert isinstance(ttft, dict)
    assert (ttft["mean"], ttft["p50"], ttft["p99"]) == (310.0, 300.0, 420.0)
    assert math.isnan(ttft["p90"])  # vLLM reports the percentiles asked for (default p99)
    assert s["tpot_ms"]["p50"] == 44.0 and s["e2e_ms"]["p99"] == 6500.0  # type: ignore[index]
    # calibrate takes it on the deployment the flags give (the file has no hit rate to check)
    path = tmp_path / "vllm.json"
    path.write_text(json.dumps(doc))
    ns = argparse.Namespace(
        time_scale=None, model="glm-5.1", gpu="h200_sxm", num_gpus=8, weights="fp8",
        kv_dtype="fp8", engine="vllm", tp=None, dp=None, ep=None, pp=None, mtp=0,
        max_context=None, mem_fraction=None, max_num_batched_tokens=None,
    )  # fmt: skip
    (measured,) = load_runs(path, ns)
    assert (measured.isl, measured.osl, measured.concurrency) == (1024, 128, 16)
    assert measured.measured["tpot_p50_ms"] == 44.0 and measured.num_gpus == 8
    del doc["input_lens"]
    run = parse_document(doc, "vllm.json").runs[0]  # type: ignore[union-attr]
    assert run.workload["workload"] != "fixed"  # without per-request lengths: not called fixed


def test_calibrate_needs_the_deployment_for_foreign_files(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["calibrate", str(GUIDELLM[0]), "--dry-run"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "guidellm result" in line and "--gpu" in line


def test_bench_import_beside_simulate(capsys: pytest.CaptureFixture[str]) -> None:
    flags = ["--import", str(FIXTURES / "guidellm-isl512.json"), "--time-scale", str(TIME_SCALE)]
    assert main(["bench", *flags, *DEPLOYMENT, "--compare-sim", "--json"]) == 0
    docs = json.loads(capsys.readouterr().out)
    assert len(docs) == 2
    for doc in docs:
        predicted = doc["predicted"]
        assert predicted["ttft_ms"]["p50"] > 0
        # the emulator is the simulator (on the same default layout, DP8 x EP8): measured and
        # predicted agree, to the timing jitter of a real run at time scale 0.1
        assert doc["output_tok_per_s"] == pytest.approx(predicted["output_tok_per_s"], rel=0.02)
        for key in ("ttft_ms", "tpot_ms"):
            for q in ("p50", "p99"):
                assert doc[key][q] == pytest.approx(predicted[key][q], rel=0.03), (key, q)


def test_inference_perf_published_stage() -> None:
    imported = read_imported(FIXTURES / "inference-perf-stage_0_lifecycle_metrics.json")
    assert imported is not None and imported.tool == "inference-perf"
    (run,) = imported.runs
    s = run.summary
    # the file's numbers (seconds) in moerun's (ms), mapped by name
    assert s["ttft_ms"]["p50"] == pytest.approx(54.611469531664625)  # type: ignore[index]
    assert s["tpot_ms"]["p90"] == pytest.approx(7.626155359569617)  # type: ignore[index]
    assert s["e2e_ms"]["mean"] == pytest.approx(3534.420235953682)  # type: ignore[index]
    assert s["output_tok_per_s"] == pytest.approx(211.50695628503055)
    assert s["duration_s"] == pytest.approx(60 / 0.9222687047312378)
    assert math.isnan(s["prefix_cache_hit_rate"])  # type: ignore[arg-type]  # not in the file
    assert run.workload["request_rate"] == 1.0 and run.workload["workload"] != "fixed"
    assert (run.workload["isl"], run.workload["osl"]) == (207, 229)


def test_aiperf_records_agree_with_aiperfs_own_aggregates() -> None:
    # AIPerf 0.13.0 run here against `moerun emulate --time-scale 2` (concurrency 4, 16
    # requests, 256 in / 32 out, chat, streaming): per-request records and its aggregate file
    folder = FIXTURES / "aiperf"
    imported = read_imported(folder / "profile_export.jsonl")
    assert imported is not None and imported.tool == "aiperf" and imported.served_model == "glm-5.1"
    (run,) = imported.runs
    assert run.workload == {"workload": "fixed", "isl": 256, "osl": 32, "concurrency": 4,
                            "num_requests": 16}  # fmt: skip
    agg = json.loads((folder / "profile_export_aiperf.json").read_text())
    s = run.summary
    assert s["ttft_ms"]["p50"] == pytest.approx(agg["time_to_first_token"]["p50"], rel=1e-5)  # type: ignore[index]
    # moerun's pooled ITL is AIPerf's inter-chunk latency; moerun's TPOT is AIPerf's ITL
    assert s["itl_ms"]["p99"] == pytest.approx(agg["inter_chunk_latency"]["p99"], rel=1e-6)  # type: ignore[index]
    assert s["tpot_ms"]["mean"] == pytest.approx(agg["inter_token_latency"]["avg"], rel=1e-6)  # type: ignore[index]
    assert s["output_tok_per_s"] == pytest.approx(agg["output_token_throughput"]["avg"], rel=0.02)
    assert s["prefix_cache_hit_rate"] == 0.0
