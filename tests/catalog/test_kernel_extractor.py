"""scripts/extract_kernel_tables.py on a small wheel-shaped zip (csv tables: no pyarrow)."""

from __future__ import annotations

import csv
import gzip
import importlib.util
import io
import json
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "extract_kernel_tables.py"
BASE = "aiconfigurator_core/systems/data/h200_sxm"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("extract_kernel_tables", SCRIPT)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def _csv(rows: list[dict[str, object]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def _wheel(path: Path) -> Path:
    gemm = [
        {"gemm_dtype": "fp8_block", "kernel_source": src, "m": m, "n": 64, "k": 128, "latency": lat}
        for m, src, lat in [
            (1, "a", 0.010),
            (1, "b", 0.008),  # the faster kernel of two is kept
            (2, "a", 0.011),
            (3, "a", 0.5),  # m=3 is a probe row moerun drops
        ]
    ]
    moe = [
        {
            "moe_dtype": "fp8_block",
            "hidden_size": 6144,
            "inter_size": 2048,
            "topk": 8,
            "num_experts": 256,
            "moe_tp_size": 8,
            "moe_ep_size": 1,
            "distribution": dist,
            "num_tokens": t,
            "latency": lat,
        }
        for dist, t, lat in [
            ("balanced", 1, 0.3),
            ("power_law_1.01", 1, 0.4),
            ("power_law_1.01", 8, 0.6),
            ("balanced", 8, 0.5),
        ]
    ] + [
        {
            "moe_dtype": "fp8_block",
            "hidden_size": 999,
            "inter_size": 1,
            "topk": 1,
            "num_experts": 3,
            "moe_tp_size": 1,
            "moe_ep_size": 1,
            "distribution": "balanced",
            "num_tokens": 1,
            "latency": 1.0,
        }  # a shape no catalog model has
    ]
    attn = [
        {
            "op_name": "dsa_generation_module",
            "architecture": "GlmMoeDsaForCausalLM",
            "gemm_type": "fp8_block",
            "kv_cache_dtype": "fp8",
            "num_heads": 8,
            "batch_size": b,
            "isl": 1,
            "step": step,
            "latency": lat,
        }
        for b, step, lat in [(1, 0, 0.07), (1, 1023, 0.08), (4, 0, 0.09)]
    ]
    silicon = [
        {
            "id": "p1",
            "silicon_data_source": "db",
            "backend": "sglang",
            "backend_version": "0.5.9",
            "model_path": "zhipuai/GLM-5",
            "system": "h200_sxm",
            "precision": "fp8",
            "mode": "agg",
            "isl": 1024,
            "osl": 1024,
            "batch_size": 4,
            "tp_size": 8,
            "attention_dp_size": 1,
            "moe_tp_size": 8,
            "moe_ep_size": 1,
            "silicon_ttft_ms": 311.6,
            "silicon_tpot_ms": 17.9,
        },
        {
            "id": "p2",
            "silicon_data_source": "db",
            "backend": "trtllm",
            "backend_version": "1",
            "model_path": "zhipuai/GLM-5",
            "system": "h200_sxm",
            "precision": "fp8",
            "mode": "agg",
            "isl": 1024,
            "osl": 1024,
            "batch_size": 4,
            "tp_size": 8,
            "attention_dp_size": 1,
            "moe_tp_size": 8,
            "moe_ep_size": 1,
            "silicon_ttft_ms": 1.0,
            "silicon_tpot_ms": 1.0,
        },
    ]
    deepep_moe = [
        {
            "moe_dtype": "fp8_block",
            "hidden_size": 7168,
            "inter_size": 2048,
            "topk": 8,
            "num_experts": 256,
            "moe_tp_size": 1,
            "moe_ep_size": 8,
            "distribution": dist,
            "kernel_source": "deepepmoe",
            "num_tokens": t,  # the collector logs tokens per rank x EP
            "latency": lat,
        }
        for dist, t, lat in [
            ("power_law_1.01", 128, 0.5),
            ("power_law_1.01", 256, 0.7),
            ("power_law_1.01", 256, 0.6),  # the faster of two is kept
            ("uniform", 128, 0.1),  # another load distribution: dropped
        ]
    ]
    normal = [
        {
            "node_num": 1,
            "hidden_size": 6144,
            "num_token": t,
            "num_topk": 8,
            "num_experts": 256,
            "dispatch_sms": sms,
            "dispatch_transmit_us": 100.0 * t / sms,
            "dispatch_notify_us": 1.0,
            "combine_sms": sms,
            "combine_transmit_us": 50.0,
            "combine_notify_us": 2.0,
        }
        for t in (1, 2)
        for sms in (10, 20)
    ]
    wheel = path / "aiconfigurator_core-0.0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(f"{BASE}/gemm/sglang/0.5.1/gemm_perf.csv", _csv(gemm))
        zf.writestr(f"{BASE}/moe/sglang/0.5.14/moe_perf.csv", _csv(moe))
        zf.writestr(f"{BASE}/moe/sglang/0.5.2/moe_perf.csv", _csv(moe[:1]))  # older: ignored
        zf.writestr(
            f"{BASE}/sparse_attention/sglang/0.5.14/dsa_generation_module_perf.csv", _csv(attn)
        )
        zf.writestr(f"{BASE}/moe/sglang/0.5.10/wideep_context_moe_perf.csv", _csv(deepep_moe))
        zf.writestr(f"{BASE}/comm/sglang/0.5.12/wideep_deepep_normal_perf.csv", _csv(normal))
        zf.writestr("aiconfigurator_core/systems/silicon_sample.csv", _csv(silicon))
    return wheel


def test_extracts_reduced_tables_and_validation_points(tmp_path: Path) -> None:
    mod = _script()
    wheel = _wheel(tmp_path)
    out, vout = tmp_path / "kernels", tmp_path / "validation"
    assert mod.main(["--wheel", str(wheel), "--out", str(out), "--validation-out", str(vout)]) == 0
    doc = json.loads(gzip.decompress((out / "h200_sxm" / "sglang.json.gz").read_bytes()))
    assert doc["versions"]["moe_perf"] == "0.5.14"
    g = doc["gemm"]["fp8_block"]
    assert (g["m"], g["n"], g["k"], g["latency_ms"]) == ([1, 2], [64], [128], [0.008, 0.011])
    (moe,) = doc["moe"]
    assert (moe["distribution"], moe["tokens"], moe["latency_ms"]) == (
        "power_law_1.01",
        [1, 8],
        [0.4, 0.6],
    )
    (dmoe,) = doc["moe_deepep"]
    assert (dmoe["phase"], dmoe["moe_ep"], dmoe["tokens_per_rank"], dmoe["latency_ms"]) == (
        "prefill",
        8,
        [16, 32],
        [0.5, 0.6],
    )
    assert doc["versions"]["wideep_context_moe_perf"] == "0.5.10"
    (a2a,) = doc["alltoall_normal"]
    # transmit + notify of dispatch and combine, in ms, at the faster SM count (20)
    assert (a2a["hidden"], a2a["tokens"]) == (6144, [1, 2])
    assert a2a["latency_ms"] == pytest.approx([(5 + 1 + 50 + 2) / 1e3, (10 + 1 + 50 + 2) / 1e3])
    (a,) = doc["attention"]
    # decode: sequence = step + 1 (the context the new token attends to); the hole stays None
    assert (a["batch"], a["seq"], a["latency_ms"]) == ([1, 4], [1, 1024], [0.07, 0.08, 0.09, None])
    source = (out / "SOURCE.yaml").read_text()
    assert "license: Apache-2.0" in source and "sha256:" in source
    rows = list(csv.DictReader((vout / "aic_silicon_sample.csv").read_text().splitlines()))
    assert [(r["id"], r["model"], r["concurrency"], r["tpot_ms"]) for r in rows] == [
        ("p1", "glm-5-fp8", "4", "17.9")
    ]
    assert "Apache-2.0" in (vout / "SOURCE.yaml").read_text()
