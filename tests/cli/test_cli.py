"""The CLI end to end, as a user runs it: real processes, exit codes, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from moerun.cli import main


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "moerun.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_model_show_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["model", "show", "glm-5.1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["total_params_main"] == 743_911_218_432
    assert data["total_params_stored"] == 753_864_139_008
    assert data["kv_bytes_per_token"]["bf16"] == 100_152
    assert data["kv_bytes_per_token"]["fp8"] == 61_464
    assert data["weight_bytes"]["bf16"] == 1_507_728_316_928
    assert set(data["weight_bytes"]) == {"bf16", "fp8", "int4", "nvfp4", "mxfp4"}
    assert "embedding" in data["active_params_definition"]


def test_model_show_human(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["model", "show", "deepseek-v3"]) == 0
    out = capsys.readouterr().out
    assert "671,026,419,200" in out and "KV cache" in out


def test_fit_json_verdicts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fit", "glm-5.1", "--gpu", "h100_sxm", "--num-gpus", "8", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["fits"] is False and data["reasons"]
    assert data["best_layout"] is None
    assert (
        main(["fit", "--model", "glm-5.1", "--gpu", "h200_sxm", "--num-gpus", "8", "--json"]) == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert data["fits"] is True
    for key in ("weights_bytes_per_gpu", "kv_capacity_tokens", "max_concurrency_at_context"):
        assert data[key] > 0
    # MLA's KV is replicated across TP, so DP-attention ranks each hold their own cache: the
    # best layout is a DP one with several times TP8's capacity, and it is the default layout
    # (one rule for fit, simulate, emulate and deploy)
    flags = ["fit", "--model", "glm-5.1", "--gpu", "h200_sxm", "--num-gpus", "8", "--json"]
    assert main([*flags, "--tp", "8"]) == 0
    tp8 = json.loads(capsys.readouterr().out)
    assert tp8["layout"] == "TP8"
    assert data["best_layout"]["parallel"]["dp"] > 1
    assert data["best_layout"]["kv_capacity_tokens"] > 3 * tp8["kv_capacity_tokens"]
    assert data["layout"] == data["best_layout"]["layout"]


def test_fit_impossible_layout_is_an_answer(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["fit", "glm-5.1", "--gpu", "h100_sxm", "--num-gpus", "10", "--tp", "10", "--json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["fits"] is False
    assert any("attention heads" in r for r in data["reasons"])
    assert "best_layout" not in data  # a layout was given, so no search


def test_fit_human_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fit", "glm-5.1", "--gpu", "b200_sxm", "--num-gpus", "8"]) == 0
    out = capsys.readouterr().out
    assert "FITS" in out and "best valid layout" in out


def test_fit_table_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fit-table", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = {(r["gpu"], r["num_gpus"], r["weights"]): r for r in data["rows"]}
    assert rows[("h200_sxm", 8, "fp8")]["fits"]
    assert rows[("b200_sxm", 8, "fp8")]["fits"]
    assert not rows[("h100_sxm", 8, "fp8")]["fits"]
    assert rows[("h100_sxm", 16, "fp8")]["fits"]
    assert not rows[("a100_sxm", 8, "fp8")]["fits"]
    assert {r["num_gpus"] for r in data["rows"] if r["gpu"] == "h200_sxm"} == {8, 16, 32}
    assert all(r["reason"] for r in data["rows"] if not r["fits"])


def test_plan_with_no_arguments_recommends() -> None:
    proc = run("plan")
    assert proc.returncode == 0, proc.stderr
    assert "agentic-coding" in proc.stdout and "Recommendation:" in proc.stdout


def test_fit_table_human_runs() -> None:
    proc = run("fit-table")
    assert proc.returncode == 0, proc.stderr
    assert "h200_sxm" in proc.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["model", "show", "/nonexistent/config.json"], "neither a catalog model"),
        (["fit", "glm-5.1", "--gpu", "h999", "--num-gpus", "8"], "h999"),
        (["fit", "glm-5.1", "--gpu", "h100_sxm", "--num-gpus", "0"], "at least 1"),
        (["fit", "glm-5.1", "--gpu", "h100_sxm", "--num-gpus", "-2"], "at least 1"),
        (["fit", "glm-5.1", "--num-gpus", "8"], "--gpu"),
        (
            ["fit", "glm-5.1", "--gpu", "h100_sxm", "--num-gpus", "8", "--mem-fraction", "1.5"],
            "(0, 1]",
        ),
    ],
)
def test_bad_input_one_line_exit_2(args: list[str], needle: str) -> None:
    proc = run(*args)
    assert proc.returncode == 2
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_bad_config_files(tmp_path: Path) -> None:
    malformed = tmp_path / "bad.json"
    malformed.write_text("{not json")
    unknown = tmp_path / "unknown" / "config.json"
    unknown.parent.mkdir()
    unknown.write_text(json.dumps({"model_type": "mamba", "hidden_size": 8}))
    missing = tmp_path / "missing.json"
    missing.write_text(json.dumps({"model_type": "llama", "hidden_size": 8}))
    cases = [
        (malformed, "not valid JSON"),
        (unknown.parent, "not supported; supported: glm_moe_dsa"),
        (missing, "lacks the required field"),
    ]
    for path, needle in cases:
        proc = run("model", "show", str(path))
        assert proc.returncode == 2, proc.stderr
        assert needle in proc.stderr
        assert "Traceback" not in proc.stderr
