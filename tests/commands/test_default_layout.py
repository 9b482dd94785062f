"""One default-layout rule: fit, simulate, emulate and deploy run the same layout for the same
flags, and each prints it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from moerun.cli import main

FLAGS = ["--model", "glm-5.1-fp8", "--gpu", "h200_sxm", "--num-gpus", "8", "--mtp", "1"]
SMALL = ["--isl", "500", "--osl", "20", "--concurrency", "2", "--num-requests", "4"]


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:  # type: ignore[type-arg]
    assert main(argv) == 0
    data: dict = json.loads(capsys.readouterr().out)  # type: ignore[type-arg]
    return data


def test_fit_simulate_deploy_print_the_same_layout(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    fit = _json(capsys, ["fit", *FLAGS, "--json"])
    sim = _json(capsys, ["simulate", *FLAGS, *SMALL, "--json"])
    dep = _json(
        capsys, ["deploy", *FLAGS, "--target", "shell", "--out", str(tmp_path / "d"), "--json"]
    )
    layouts = {fit["layout"], sim["deployment"]["layout"], dep["groups"][0]["layout"]}
    # MLA's latent KV is replicated across TP ranks, so 8 attention-DP ranks hold 8 caches: the
    # most KV on 8 GPUs is DP8 (experts placed whole over the 8 GPUs: EP8 breaks the tie).
    assert layouts == {"DP8 x EP8"}
    assert fit["layout_source"] == "default"
    assert fit["best_layout"]["layout"] == fit["layout"]


def test_every_command_prints_its_layout(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for argv in (["fit", *FLAGS], ["simulate", *FLAGS, *SMALL]):
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert "layout: DP8 x EP8 (default" in out.replace("\n", " ")
    assert main(["deploy", *FLAGS, "--target", "shell", "--out", str(tmp_path / "d")]) == 0
    assert "DP8 x EP8" in capsys.readouterr().out


def test_a_given_layout_is_kept(capsys: pytest.CaptureFixture[str]) -> None:
    fit = _json(capsys, ["fit", *FLAGS, "--tp", "8", "--json"])
    sim = _json(capsys, ["simulate", *FLAGS, "--tp", "8", *SMALL, "--json"])
    assert fit["layout"] == sim["deployment"]["layout"] == "TP8"
    assert fit["layout_source"] == "given"
