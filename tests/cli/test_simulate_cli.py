"""`moerun simulate` and `moerun calibrate` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from moerun.cli import main

BASE = ["simulate", "--model", "glm-5.1-fp8", "--gpu", "h200_sxm", "--num-gpus", "8", "--mtp", "1"]


def run_json(capsys: pytest.CaptureFixture[str], *extra: str) -> dict:  # type: ignore[type-arg]
    assert main([*BASE, *extra, "--json"]) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_simulate_json_has_the_shared_metric_keys(capsys: pytest.CaptureFixture[str]) -> None:
    out = run_json(
        capsys, "--isl", "2048", "--osl", "64", "--concurrency", "8", "--num-requests", "40"
    )
    for key in ("output_tok_per_s", "input_tok_per_s", "req_per_s"):
        assert out[key] > 0
        assert out["speed_of_light"][key] >= out[key]
    for key in ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms"):
        assert set(out[key]) == {"mean", "p50", "p90", "p99"}
    assert out["calibration"]["status"] == "calibrated"
    assert out["num_completed"] == 40


def test_simulate_agentic_and_rate(capsys: pytest.CaptureFixture[str]) -> None:
    out = run_json(
        capsys,
        "--workload",
        "agentic",
        "--num-sessions",
        "6",
        "--turns",
        "4",
        "--request-rate",
        "0.5",
        "--slo-ttft-ms",
        "2000",
    )
    assert out["prefix_cache_hit_rate"] > 0.3
    assert "goodput_req_per_s" in out


def test_simulate_trace_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "t.jsonl"
    trace.write_text(
        '{"arrival_s": 0.0, "input_tokens": 500, "output_tokens": 20}\n'
        '{"arrival_s": 0.5, "input_tokens": 900, "output_tokens": 10}\n'
    )
    out = run_json(capsys, "--workload", str(trace))
    assert out["num_completed"] == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--request-rate", "-3"], "must be positive"),
        (["--max-context", "500000"], "exceeds the model"),
        (["--workload", "nope.jsonl"], "cannot read trace"),
        (["--tp", "3"], "divide"),
        (["--routing", "prefix-affinity", "--balance-abs", "-1"], "--balance-abs must be"),
        (["--routing", "prefix-affinity", "--balance-rel", "0.5"], "--balance-rel must be"),
        (["--mixed-chunk"], "SGLang flags: add --engine sglang"),
    ],
)
def test_bad_input_exits_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*BASE, *args]) == 2
    assert message in capsys.readouterr().err


def test_simulate_echoes_the_sglang_prefill_flags(capsys: pytest.CaptureFixture[str]) -> None:
    sglang = ["--engine", "sglang", "--isl", "1024", "--osl", "16", "--num-requests", "8"]
    out = run_json(capsys, *sglang, "--mtp", "0", "--mixed-chunk", "--max-prefill-tokens", "2524")
    assert out["deployment"]["mixed_chunk"] is True
    assert out["deployment"]["max_prefill_tokens"] == 2524
    # under MTP (EAGLE) SGLang runs without mixed chunks, and so does the simulation
    assert run_json(capsys, *sglang, "--mixed-chunk")["deployment"]["mixed_chunk"] is False


def test_simulating_a_layout_that_does_not_fit_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "simulate",
            "--model",
            "glm-5.1",
            "--gpu",
            "h100_sxm",
            "--num-gpus",
            "8",
            "--weights",
            "bf16",
            "--tp",
            "8",
        ]
    )
    assert code == 2
    assert "cannot run" in capsys.readouterr().err


def test_calibrate_dry_run_reports_cross_validated_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["calibrate", "--dry-run", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    (group,) = out["groups"]
    assert group["gpu"] == "h200_sxm" and len(group["rows"]) == 24
    assert set(group["cross_validated_mape"]) >= {"tpot_p50_ms", "output_tok_per_s", "ttft_p50_ms"}
    assert out["written"] == []


def test_calibrate_writes_a_versioned_profile(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = (
        Path(__file__).parents[2] / "src/moerun/catalog/data/measurements/glm5-fp8-8xh200-vllm.csv"
    )
    rows = csv.read_text().splitlines()
    small = tmp_path / "m.csv"
    small.write_text("\n".join(rows[:7]) + "\n")
    assert main(["calibrate", str(small), "--out", str(tmp_path / "prof")]) == 0
    assert main(["calibrate", str(small), "--out", str(tmp_path / "prof")]) == 0
    names = sorted(p.name for p in (tmp_path / "prof").iterdir())
    assert names == ["h200_sxm-vllm-v1.yaml", "h200_sxm-vllm-v2.yaml"]
    # the profile keeps the configuration its runs used: vLLM's default KV (no
    # --kv-cache-dtype in their launch), random-token prompts
    written = (tmp_path / "prof" / "h200_sxm-vllm-v2.yaml").read_text()
    assert "kv_dtype: bf16" in written and "prompts: random" in written
    # the architecture its runs served, and no cross-validated band from runs of one input
    # length (their in-sample error is not one)
    assert "model_types:\n- glm_moe_dsa\n" in written
    # and the kind of layout they used (TP8 on one node)
    assert "layouts:\n- single-node\n" in written
    assert "cross_validated_mape: {}" in written
    capsys.readouterr()


def test_calibrate_rejects_bad_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "x.csv"
    bad.write_text("id,model\nA,zai-org/GLM-5-FP8\n")
    assert main(["calibrate", str(bad)]) == 2
    assert "x.csv: line 2" in capsys.readouterr().err


def test_calibrate_holds_a_parameter_and_the_profile_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from moerun.catalog.perf.calibration import load_profiles

    csv = (
        Path(__file__).parents[2] / "src/moerun/catalog/data/measurements/glm5-fp8-8xh200-vllm.csv"
    )
    small = tmp_path / "m.csv"
    small.write_text("\n".join(csv.read_text().splitlines()[:7]) + "\n")
    args = ["calibrate", str(small), "--out", str(tmp_path / "prof")]
    assert main([*args, "--hold", "request_overhead_s=0.05", "--hold", "step_overhead_s=0"]) == 0
    (prof,) = load_profiles(tmp_path / "prof")
    assert prof.held == {"request_overhead_s": 0.05, "step_overhead_s": 0.0}
    assert prof.params.request_overhead_s == 0.05 and prof.params.step_overhead_s == 0.0
    text = (tmp_path / "prof" / "h200_sxm-vllm-v1.yaml").read_text()
    assert "held:\n  request_overhead_s: 0.05\n  step_overhead_s: 0.0\n" in text
    capsys.readouterr()
    # a name calibration does not fit, a value that is not a number, one outside the bounds
    for bad in ("comm_efficiency=0.5", "request_overhead_s=fast", "kernel_scale=9"):
        assert main([*args, "--hold", bad]) == 2
        err = capsys.readouterr().err
        assert "--hold" in err and bad in err and len(err.strip().splitlines()) == 1
    assert len(list((tmp_path / "prof").iterdir())) == 1  # nothing written by the refusals


def test_simulate_says_what_an_extrapolated_band_rests_on(
    capsys: pytest.CaptureFixture[str],
) -> None:
    base = ["simulate", "--model", "glm-5.1", "--engine", "sglang", "--isl", "1000", "--osl",
            "100", "--concurrency", "4", "--num-requests", "8"]  # fmt: skip
    assert main([*base, "--gpu", "gb200", "--num-gpus", "8", "--tp", "8"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "calibration: extrapolated" in out
    # GLM-5.1 on a profile fitted on DeepSeek-R1 runs, extrapolated to another GPU: both errors
    assert "error band: measured error of h200_sxm-sglang v2 (fitted on deepseek_v3 runs)" in out
    assert "largest measured error of a sglang profile on another GPU's runs" in out
    # on two nodes (H100's default layout for GLM-5.1): no profile was measured on such a
    # layout, so there is no band, and it says why
    assert main([*base, "--gpu", "h100_sxm", "--num-gpus", "16"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "calibration: extrapolated" in out and "used for multi-node" in out
    assert (
        "error band: none measured: no sglang profile has been measured on runs of a "
        "multi-node layout"
    ) in out
    assert main([*base, "--gpu", "h200_sxm", "--num-gpus", "8"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "calibration: calibrated" in out and "used for glm_moe_dsa" in out
    assert "error band: measured error of h200_sxm-sglang v2 (fitted on deepseek_v3 runs)" in out
    # a model its runs served, on the layout they used (TP8; DeepSeek's default here is DP8),
    # by a profile fitted on one input length (no cross-validation): the band measured on its
    # other runs, and it says so
    deepseek = [*base, "--gpu", "h200_sxm", "--num-gpus", "8", "--tp", "8"]
    deepseek[deepseek.index("glm-5.1")] = "deepseek-v3"
    assert main(deepseek) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "calibration: calibrated" in out and "used for" not in out
    assert "error band: measured error of h200_sxm-sglang v2 on 9 h200_sxm sglang runs" in out
    # a cross-validated profile on a model its runs served: nothing more to say
    vllm = [*base, "--gpu", "h200_sxm", "--num-gpus", "8", "--tp", "8"]
    vllm[vllm.index("sglang")] = "vllm"
    assert main(vllm) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "calibration: calibrated" in out and "error band:" not in out
