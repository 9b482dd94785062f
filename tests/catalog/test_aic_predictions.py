"""AIConfigurator's predictions in the catalog (scripts/aic_predictions.py's output): they load,
belong to silicon points by id, and cover the groups bench_accuracy compares. No network and no
AIConfigurator at test time: the script's pure helpers are loaded from its file."""

from __future__ import annotations

import csv
import importlib.util
import io
import sys
from importlib import resources
from pathlib import Path
from types import ModuleType

import pytest

from moerun.catalog.perf.aic_predictions import (
    POINT_FIELDS,
    aic_predictions,
    aic_predictions_source,
    parse_predictions,
)
from moerun.errors import CatalogError

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "aic_predictions.py"
# The groups the acceptance compares (bench_accuracy's SILICON_GROUPS)
GROUPS = {
    ("h200_sxm", "zhipuai/GLM-5"),
    ("h200_sxm", "deepseek-ai/DeepSeek-V3"),
    ("b200_sxm", "zhipuai/GLM-5"),
}


def _silicon_rows() -> dict[str, dict[str, str]]:
    text = (
        resources.files("moerun.catalog")
        .joinpath("data/validation/aic_silicon_sample.csv")
        .read_text("utf-8")
    )
    return {r["id"]: r for r in csv.DictReader(io.StringIO(text))}


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("aic_predictions_script", SCRIPT)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_predictions_match_silicon_points_by_id() -> None:
    preds, silicon = aic_predictions(), _silicon_rows()
    assert preds, "the catalog ships AIConfigurator's predictions"
    for pid, p in preds.items():
        assert pid in silicon, f"{pid} is not a silicon point"
        assert p.point == tuple(silicon[pid][f] for f in POINT_FIELDS), pid


def test_every_point_of_the_compared_groups_has_a_prediction() -> None:
    preds, silicon = aic_predictions(), _silicon_rows()
    wanted = [i for i, r in silicon.items() if (r["gpu"], r["model_path"]) in GROUPS]
    # 30 + 15 rows on H200 (GLM-5 listed twice, from two source files), 46 on B200
    assert len(wanted) == 30 + 15 + 46
    for i in wanted:
        p = preds[i]
        assert p.ttft_ms is not None and p.tpot_ms is not None, (i, p.note)
        # The first token needs a whole prefill of >= 1024 tokens, a later one a decode step
        assert p.ttft_ms > p.tpot_ms, i


def test_one_configuration_one_prediction() -> None:
    # AIConfigurator's estimate depends on the configuration only, not on which run measured it
    by_point: dict[tuple[str, ...], set[tuple[float | None, float | None]]] = {}
    for p in aic_predictions().values():
        by_point.setdefault(p.point, set()).add((p.ttft_ms, p.tpot_ms))
    assert all(len(v) == 1 for v in by_point.values())


def test_source_names_package_and_license() -> None:
    assert aic_predictions_source().startswith("aiconfigurator==0.12.0")
    text = (
        resources.files("moerun.catalog")
        .joinpath("data/validation/aic_predictions.SOURCE.yaml")
        .read_text("utf-8")
    )
    for needle in ("license: Apache-2.0", "NVIDIA CORPORATION", "as_of: '20", "database_mode"):
        assert needle in text


AIC_FIELDS = ("aic_model_path", "aic_backend_version", "aic_ttft_ms", "aic_tpot_ms", "note")
HEADER = ",".join(("id", *POINT_FIELDS, *AIC_FIELDS))
ROW = "p1,zhipuai/GLM-5,h200_sxm,sglang,v,fp8,1024,1024,4,8,1,8,1,zai-org/GLM-5-FP8,0.5.14"


@pytest.mark.parametrize(
    "body",
    [
        f"{ROW},300,,\n",  # TPOT missing but TTFT given
        f"{ROW},-1,10,\n",  # a sentinel, not a prediction
        f"{ROW},abc,10,\n",
        f"{ROW},300,10,\n{ROW},300,10,\n",  # the same id twice
    ],
)
def test_malformed_files_are_refused(body: str) -> None:
    with pytest.raises(CatalogError, match="line"):
        parse_predictions(f"{HEADER}\n{body}")


def test_a_point_without_prediction_reads_as_none() -> None:
    p = parse_predictions(f"{HEADER}\n{ROW},,,ValueError: no data\n")["p1"]
    assert p.ttft_ms is None and p.tpot_ms is None and p.note.startswith("ValueError")


def test_script_asks_aic_with_the_wheel_rows_settings() -> None:
    mod = _script()
    wheel_row = {
        "system": "b200_sxm",
        "backend": "sglang",
        "isl": "8192",
        "osl": "1024",
        "batch_size": "16",
        "tp_size": "8",
        "pp_size": "",
        "attention_dp_size": "2",
        "moe_tp_size": "1",
        "moe_ep_size": "8",
        "gemm_quant_mode": "fp8",
        "moe_quant_mode": "fp8_block",
    }
    assert mod.estimate_kwargs(wheel_row, "zai-org/GLM-5-FP8", "SILICON") == {
        "model_path": "zai-org/GLM-5-FP8",
        "system_name": "b200_sxm",
        "mode": "agg",
        "backend_name": "sglang",
        "database_mode": "SILICON",
        "isl": 8192,
        "osl": 1024,
        "batch_size": 16,
        "tp_size": 8,
        "pp_size": 1,
        "attention_dp_size": 2,
        "moe_tp_size": 1,
        "moe_ep_size": 8,
        "gemm_quant_mode": "fp8",
        "moe_quant_mode": "fp8_block",
    }
    unquantised = {**wheel_row, "gemm_quant_mode": "", "moe_quant_mode": ""}
    kwargs = mod.estimate_kwargs(unquantised, "x/y", "SILICON")
    assert "gemm_quant_mode" not in kwargs and "moe_quant_mode" not in kwargs


def test_script_groups_runs_of_one_configuration() -> None:
    mod = _script()
    base = dict.fromkeys(POINT_FIELDS, "1")
    rows = [
        {**base, "id": "a"},
        {**base, "id": "b", "concurrency": "2"},
        {**base, "id": "c"},
    ]
    assert list(mod.distinct_points(rows).values()) == [["a", "c"], ["b"]]
    assert mod.POINT_FIELDS == POINT_FIELDS
