"""The support matrix at the edges: plan ranks only verified combinations by default (each with
its sources), --allow-unverified marks the others, and deploy renders AMD's own flags."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from moerun.cli import main

FAST = ["--no-progress", "--no-simulate", "--nodes", "1", "--mtp", "0,1"]


def _plan(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:  # type: ignore[type-arg]
    assert main(["plan", *FAST, *argv, "--json"]) == 0
    data: dict = json.loads(capsys.readouterr().out)  # type: ignore[type-arg]
    return data


def test_default_plan_ranks_only_verified_with_sources(
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = _plan(capsys, "--gpus", "h200_sxm,b200_sxm,mi300x")
    self_hosted = [o for o in data["options"] if o["kind"] != "managed"]
    assert self_hosted, "sglang on H200/B200 is verified by SGLang's GLM-5 cookbook"
    for o in data["options"]:
        assert o["support"]["status"] == "verified", o["label"]
    for o in self_hosted:
        assert o["support"]["sources"] and all(
            s["url"].startswith("https://") and s["date"] for s in o["support"]["sources"]
        )
        assert "mi300x" not in o["label"]  # vLLM on AMD: unverified; SGLang FP8 on AMD too
    assert data["allow_unverified"] is False
    held = data["not_ranked_support"]
    assert held and all(h["status"] != "verified" and h["reasons"] for h in held)


def test_allow_unverified_marks_every_unverified_option(
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = _plan(capsys, "--gpus", "mi300x", "--allow-unverified", "--self-hosted-only")
    statuses = {o["support"]["status"] for o in data["options"]}
    assert statuses == {"unverified"}, statuses
    # SGLang's EAGLE on AMD is known unsupported: never ranked, even when allowed
    for o in data["options"]:
        d = o["deployment"] or o["disaggregation"]["decode"]["deployment"]
        assert not (d["engine"] == "sglang" and d["mtp"] > 0), o["label"]
    assert (
        main(["plan", *FAST, "--gpus", "mi300x", "--allow-unverified", "--self-hosted-only"]) == 0
    )
    assert "[unverified]" in capsys.readouterr().out


def test_deploy_on_amd_renders_rocm_flags_and_env(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    dep = ["--model", "glm-5.1-fp8", "--gpu", "mi300x", "--num-gpus", "8", "--tp", "8"]
    out = tmp_path / "v"
    assert main(["deploy", *dep, "--engine", "vllm", "--target", "shell", "--out", str(out)]) == 0
    capsys.readouterr()
    script = next(out.glob("*node0.sh")).read_text()
    assert "VLLM_ROCM_USE_AITER=1" in script  # AMD's vLLM guide and vLLM's ROCm scripts
    assert "--block-size 1" in script
    out = tmp_path / "s"
    args = ["deploy", *dep, "--engine", "sglang", "--target", "shell", "--out", str(out), "--json"]
    assert main(args) == 0
    data = json.loads(capsys.readouterr().out)
    (cmd,) = [c["command"] for c in data["commands"]]
    assert "--dsa-prefill-backend tilelang --dsa-decode-backend tilelang" in cmd
    assert data["groups"][0]["image"].endswith("-rocm720-mi30x")
    assert any("not verified on AMD" in n for n in data["notes"])
    # on NVIDIA none of it
    out = tmp_path / "n"
    nv = ["--model", "glm-5.1-fp8", "--gpu", "h200_sxm", "--num-gpus", "8", "--tp", "8"]
    assert main(["deploy", *nv, "--target", "shell", "--out", str(out)]) == 0
    script = next(out.glob("*node0.sh")).read_text()
    assert "AITER" not in script and "--block-size" not in script


def test_plan_fits_a_100_column_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    assert main(["plan", *FAST]) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert "Ranked options" in out and "blended" in out
    too_long = [line for line in (out + captured.err).splitlines() if len(line) > 100]
    assert too_long == []
    assert "Not ranked, no source verifies them" in out
