"""`moerun model list` and `moerun --version`."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from moerun.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_model_list_json_has_every_model_with_computed_params(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["model", "list", "--json"]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert {"glm-5.1", "glm-5.2", "glm-5.2-fp8", "deepseek-v3", "deepseek-v3.2"} <= set(rows)
    # GLM-5's exact count less 57 indexers of 9,371,904 parameters (IndexCache).
    assert rows["glm-5.2"]["total_params_main"] == 743_911_218_432 - 57 * 9_371_904
    assert rows["glm-5.1"]["total_params_stored"] == 753_864_139_008
    assert rows["glm-5.2"]["formats"] == {"bf16": "zai-org/GLM-5.2", "fp8": "zai-org/GLM-5.2-FP8"}
    assert rows["deepseek-v3.2"]["family"] == "DeepSeek-V3"
    assert all(r["source"] and r["family"] for r in rows.values())


def test_model_list_table_names_each_model(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "160")
    assert main(["model", "list"]) == 0
    out = capsys.readouterr().out
    for mid in ("glm-5.2-fp8", "deepseek-v3.2", "llama-3.1-70b"):
        assert mid in out


def test_version_is_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    expected = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"moerun {expected}"
