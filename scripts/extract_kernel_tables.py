#!/usr/bin/env python3
"""Extract NVIDIA's measured kernel tables from the aiconfigurator-core wheel into moerun.

    python scripts/extract_kernel_tables.py                    # aiconfigurator-core==0.12.0
    python scripts/extract_kernel_tables.py --wheel /tmp/aiconfigurator_core-0.12.0-...whl
    python scripts/extract_kernel_tables.py --version 0.13.0 --out /tmp/kernels

NVIDIA publishes per-operation silicon measurements under Apache-2.0 inside the wheel
(`aiconfigurator_core/systems/data/<gpu>/<op>/<engine>/<version>/*.parquet`). This script
downloads the wheel from PyPI (`pip download --no-deps`), keeps what moerun's step-time model
prices, and writes compact JSON that moerun loads with the standard library alone:

  src/moerun/catalog/data/kernels/<gpu>/<engine>.json.gz   GEMM per dtype (m x n x k grid), fused
        MoE per (shape, dtype, moe TP, moe EP), attention modules (DSA / MLA, prefill and
        decode, batch x sequence grid) or MLA kernels, custom all-reduce, DeepEP all-to-all
        (low-latency and normal mode) and the expert GEMMs SGLang runs behind DeepEP
  src/moerun/catalog/data/kernels/<gpu>/nccl.json.gz       NCCL all-reduce / all-to-all
  src/moerun/catalog/data/kernels/SOURCE.yaml           wheel, sha256, date, license notice
  src/moerun/catalog/data/validation/aic_silicon_sample.csv   the measured end-to-end points
        (`systems/silicon_sample.csv`) of models moerun knows: a validation set, never fitted

Parquet is read with pyarrow, which moerun never depends on: when it is not importable the
script makes a throw-away virtual environment, installs pyarrow there and runs itself in it.
A table stored as `.csv` under the same path is read with the csv module (the tests build such
a wheel-shaped zip without pyarrow).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import gzip
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "src" / "moerun" / "catalog" / "data" / "kernels"
VALIDATION_OUT = ROOT / "src" / "moerun" / "catalog" / "data" / "validation"
MODELS_DIR = ROOT / "src" / "moerun" / "catalog" / "models"
PACKAGE = "aiconfigurator-core"
DEFAULT_VERSION = "0.12.0"
DATA_PREFIX = "aiconfigurator_core/systems/data/"
SILICON = "aiconfigurator_core/systems/silicon_sample.csv"
GPUS_YAML = ROOT / "src" / "moerun" / "catalog" / "data" / "gpus.yaml"
ENGINES = ("sglang", "vllm")
# GEMM dtypes moerun's weight formats run (per-tensor fp8 only where block fp8 is missing)
GEMM_DTYPES = ("bfloat16", "fp8_block", "nvfp4", "fp8")
# GEMM rows: powers of two and the multiples of 16 / 256 the tables hold (not the +1 probes)
GEMM_M_KEEP = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768}
# The expert-load distribution kept for fused MoE (AIConfigurator's tables also hold
# 'balanced' and 'power_law_1.2'; real routers are imbalanced, and 1.01 is the mild case)
MOE_DISTRIBUTION = ("power_law_1.01", "balanced")
# HF architectures whose attention-module tables moerun uses, and the silicon models it knows
ARCHITECTURES = {"GlmMoeDsaForCausalLM", "DeepseekV32ForCausalLM", "DeepseekV3ForCausalLM"}
SILICON_MODELS = {
    "zhipuai/GLM-5": "glm-5-fp8",
    "deepseek-ai/DeepSeek-V3": "deepseek-v3",
    "deepseek-ai/DeepSeek-R1": "deepseek-v3",
}
LICENSE_NOTICE = (
    "Copyright (c) 2025-2026 NVIDIA CORPORATION & AFFILIATES. All rights reserved. "
    "Licensed under the Apache License, Version 2.0 "
    "(http://www.apache.org/licenses/LICENSE-2.0); extracted and reduced (selected rows, "
    "fastest kernel per shape, JSON) by scripts/extract_kernel_tables.py in moerun."
)


def _sig(x: float) -> float:
    """Four significant digits: the tables' run-to-run noise is larger."""
    return float(f"{x:.4g}")


def _version_key(v: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", v)) or (0,)


def _keep_fastest(cells: dict[Any, float], at: Any, latency: float) -> None:
    """Record `latency` at `at` unless a faster (positive) one is there: every table keeps the
    fastest kernel or configuration measured per size."""
    if latency > 0 and (at not in cells or latency < cells[at]):
        cells[at] = latency


def read_rows(zf: zipfile.ZipFile, member: str) -> list[dict[str, Any]]:
    """The rows of one table in the wheel: parquet through pyarrow, csv through csv."""
    data = zf.read(member)
    if member.endswith(".csv"):
        rows = list(csv.DictReader(io.StringIO(data.decode())))
        return [{k: _num(v) for k, v in r.items()} for r in rows]
    import pyarrow.parquet as pq  # only in the extractor's own environment

    return list(pq.read_table(io.BytesIO(data)).to_pylist())


def _num(v: str) -> Any:
    try:
        f = float(v)
    except ValueError:
        return v
    return int(f) if f.is_integer() and "." not in v else f


def tables(zf: zipfile.ZipFile) -> dict[tuple[str, str, str], dict[str, str]]:
    """(gpu, op dir, engine) -> {table name: member} at the newest version present."""
    found: dict[tuple[str, str, str], dict[str, dict[str, str]]] = defaultdict(dict)
    for member in zf.namelist():
        if not member.startswith(DATA_PREFIX) or not member.endswith((".parquet", ".csv")):
            continue
        parts = member[len(DATA_PREFIX) :].split("/")
        if len(parts) != 5:
            continue
        gpu, op, engine, version, fname = parts
        name = fname.rsplit(".", 1)[0]
        found[(gpu, op, engine)].setdefault(version, {})[name] = member
    out: dict[tuple[str, str, str], dict[str, str]] = {}
    for key, versions in found.items():
        # the newest version of each table (a table may exist only in an older collection)
        merged: dict[str, str] = {}
        for v in sorted(versions, key=_version_key):
            merged.update(versions[v])
        out[key] = merged
    return out


def _version_of(member: str) -> str:
    return member[len(DATA_PREFIX) :].split("/")[3]


def gemm_tables(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Per dtype an m x n x k grid of the fastest kernel's latency (None where unmeasured)."""
    best: dict[str, dict[tuple[int, int, int], float]] = defaultdict(dict)
    for r in rows:
        m = int(r["m"])
        if m not in GEMM_M_KEEP:
            continue
        key = (m, int(r["n"]), int(r["k"]))
        lat = float(r["latency"])
        d = best[str(r["gemm_dtype"])]
        _keep_fastest(d, key, lat)
    out = {}
    for dtype, cells in sorted(best.items()):
        if dtype not in GEMM_DTYPES or (dtype == "fp8" and "fp8_block" in best):
            continue
        ms = sorted({k[0] for k in cells})
        ns = sorted({k[1] for k in cells})
        ks = sorted({k[2] for k in cells})
        grid = [
            _sig(cells[(m, n, k)]) if (m, n, k) in cells else None
            for m in ms
            for n in ns
            for k in ks
        ]
        out[dtype] = {"m": ms, "n": ns, "k": ks, "latency_ms": grid}
    return out


def moe_tables(rows: Iterable[dict[str, Any]], shapes: set[tuple[int, int]]) -> list[Any]:
    """Fused-MoE latency over token counts, per (shape, dtype, moe TP, moe EP)."""
    best: dict[tuple[Any, ...], dict[int, float]] = defaultdict(dict)
    dist_rank = {d: i for i, d in enumerate(MOE_DISTRIBUTION)}
    for r in rows:
        if (int(r["hidden_size"]), int(r["num_experts"])) not in shapes:
            continue
        dist = str(r.get("distribution", "balanced"))
        if dist not in dist_rank:
            continue
        key = (
            str(r["moe_dtype"]),
            int(r["hidden_size"]),
            int(r["inter_size"]),
            int(r["topk"]),
            int(r["num_experts"]),
            int(r["moe_tp_size"]),
            int(r["moe_ep_size"]),
            dist,
        )
        t, lat = int(r["num_tokens"]), float(r["latency"])
        _keep_fastest(best[key], t, lat)
    out = []
    chosen: dict[tuple[Any, ...], tuple[int, Any]] = {}
    for key in best:
        base, rank = key[:7], dist_rank[key[7]]
        if base not in chosen or rank < chosen[base][0]:
            chosen[base] = (rank, key)
    for base, (_, key) in sorted(chosen.items()):
        tokens = sorted(best[key])
        out.append(
            {
                "dtype": base[0],
                "hidden": base[1],
                "inter": base[2],
                "topk": base[3],
                "experts": base[4],
                "moe_tp": base[5],
                "moe_ep": base[6],
                "distribution": key[7],
                "tokens": tokens,
                "latency_ms": [_sig(best[key][t]) for t in tokens],
            }
        )
    return out


def attention_tables(rows: Iterable[dict[str, Any]], op: str, phase: str) -> list[Any]:
    """Batch x sequence grids of one attention table (decode: sequence = context length).

    `op` is "module" (projections, indexer, attention and output projection of one layer, as
    AIConfigurator's module collectors time it) or "kernel" (the attention kernel alone).
    """
    cells: dict[tuple[Any, ...], dict[tuple[int, int], float]] = defaultdict(dict)
    for r in rows:
        arch = str(r.get("architecture", ""))
        if op == "module" and arch not in ARCHITECTURES:
            continue
        if str(r.get("op_name", "")).endswith("skip_indexer"):
            continue
        if phase == "prefill":
            if int(r.get("step", 0)) != 0:
                continue
            seq = int(r["isl"])
        else:
            seq = int(r["step"]) + 1
        key = (
            arch,
            str(r.get("gemm_type", "")),
            str(r["kv_cache_dtype"]),
            int(r["num_heads"]),
        )
        b, lat = int(r["batch_size"]), float(r["latency"])
        d = cells[key]
        _keep_fastest(d, (b, seq), lat)
    out = []
    for key, d in sorted(cells.items()):
        bs = sorted({c[0] for c in d})
        ss = sorted({c[1] for c in d})
        out.append(
            {
                "op": op,
                "phase": phase,
                "architecture": key[0],
                "gemm_dtype": key[1],
                "kv_dtype": key[2],
                "num_heads": key[3],
                "batch": bs,
                "seq": ss,
                "latency_ms": [_sig(d[(b, s)]) if (b, s) in d else None for b in bs for s in ss],
            }
        )
    return out


def allreduce_tables(rows: Iterable[dict[str, Any]]) -> list[Any]:
    """CUDA-graph custom all-reduce latency over message bytes, per GPU count."""
    by: dict[int, dict[int, float]] = defaultdict(dict)
    for r in rows:
        if "graph" not in str(r.get("backend", r.get("kernel_source", ""))):
            continue
        n, size, lat = int(r["num_gpus"]), int(r["message_size"]), float(r["latency"])
        _keep_fastest(by[n], size, lat)
    return [
        {
            "num_gpus": n,
            "bytes": sorted(d),
            "latency_ms": [_sig(d[s]) for s in sorted(d)],
        }
        for n, d in sorted(by.items())
    ]


def nccl_tables(rows: Iterable[dict[str, Any]]) -> list[Any]:
    """NCCL collective latency (half precision) over message bytes, per op and GPU count."""
    by: dict[tuple[str, int], dict[int, float]] = defaultdict(dict)
    for r in rows:
        if str(r.get("nccl_dtype", "half")) != "half":
            continue
        key = (str(r["op_name"]), int(r["num_gpus"]))
        size, lat = int(r["message_size"]), float(r["latency"])
        _keep_fastest(by[key], size, lat)
    return [
        {
            "op": k[0],
            "num_gpus": k[1],
            "bytes": sorted(d),
            "latency_ms": [_sig(d[s]) for s in sorted(d)],
        }
        for k, d in sorted(by.items())
    ]


# DeepEP's two modes and the columns of AIConfigurator's tables that sum to dispatch + combine:
# low latency (decode; per-phase averages) and normal (prefill; transmit + notify per phase,
# one row per SM count tried, the fastest kept as for every other table)
DEEPEP_COLUMNS = {
    "deepep_low_latency": ("dispatch_avg_t_us", "combine_avg_t_us"),
    "deepep_normal": (
        "dispatch_transmit_us",
        "dispatch_notify_us",
        "combine_transmit_us",
        "combine_notify_us",
    ),
}


def deepep_tables(rows: Iterable[dict[str, Any]], kind: str) -> list[Any]:
    """DeepEP dispatch + combine latency over tokens per rank (SGLang's wide-EP tables), within
    one node; `kind` is the mode (DEEPEP_COLUMNS)."""
    by: dict[tuple[Any, ...], dict[int, float]] = defaultdict(dict)
    for r in rows:
        if int(r.get("node_num", 1)) != 1:
            continue
        key = (int(r["hidden_size"]), int(r["num_topk"]), int(r["num_experts"]))
        t = int(r["num_token"])
        lat = sum(float(r[c]) for c in DEEPEP_COLUMNS[kind]) / 1e3
        _keep_fastest(by[key], t, lat)
    return [
        {
            "kind": kind,
            "hidden": k[0],
            "topk": k[1],
            "experts": k[2],
            "tokens": sorted(d),
            "latency_ms": [_sig(d[t]) for t in sorted(d)],
        }
        for k, d in sorted(by.items())
    ]


def deepep_moe_tables(
    rows: Iterable[dict[str, Any]], phase: str, shapes: set[tuple[int, int]]
) -> list[Any]:
    """The expert GEMMs SGLang runs behind DeepEP (DeepGEMM), per (dtype, shape, EP), over
    tokens per rank: `phase` "prefill" is the normal-mode table (AIConfigurator's
    wideep_context_moe), "decode" the low-latency one (wideep_generation_moe). Its collector
    times one rank's experts and logs tokens per rank x EP; the mildest power-law load is kept,
    as for the fused-MoE tables; shapes of catalog models only."""
    best: dict[tuple[Any, ...], dict[int, float]] = defaultdict(dict)
    for r in rows:
        if (int(r["hidden_size"]), int(r["num_experts"])) not in shapes:
            continue
        if str(r.get("distribution", "")) != MOE_DISTRIBUTION[0] or int(r["moe_tp_size"]) != 1:
            continue
        ep = int(r["moe_ep_size"])
        key = (
            str(r["moe_dtype"]),
            int(r["hidden_size"]),
            int(r["inter_size"]),
            int(r["topk"]),
            int(r["num_experts"]),
            ep,
        )
        t, lat = int(r["num_tokens"]) // ep, float(r["latency"])
        _keep_fastest(best[key], t, lat)
    return [
        {
            "phase": phase,
            "dtype": k[0],
            "hidden": k[1],
            "inter": k[2],
            "topk": k[3],
            "experts": k[4],
            "moe_ep": k[5],
            "distribution": MOE_DISTRIBUTION[0],
            "tokens_per_rank": sorted(d),
            "latency_ms": [_sig(d[t]) for t in sorted(d)],
        }
        for k, d in sorted(best.items())
        if len(d) >= 2
    ]


def moe_shapes(models_dir: Path) -> set[tuple[int, int]]:
    """(hidden size, routed experts) of every MoE model in moerun's catalog."""
    shapes = set()
    for f in sorted(models_dir.glob("*.json")):
        cfg = json.loads(f.read_text())
        cfg = cfg.get("text_config", cfg)
        experts = cfg.get("n_routed_experts") or cfg.get("num_experts")
        if experts:
            shapes.add((int(cfg["hidden_size"]), int(experts)))
    return shapes


def catalog_gpus(path: Path) -> set[str]:
    """The GPU ids of moerun's catalog (`- id:` lines of gpus.yaml)."""
    return set(re.findall(r"^- id: (\S+)", path.read_text(), flags=re.M))


def extract(
    zf: zipfile.ZipFile, shapes: set[tuple[int, int]], gpu_ids: set[str]
) -> dict[tuple[str, str], Any]:
    """(gpu, engine or "nccl") -> the reduced tables of each catalog GPU."""
    found = tables(zf)
    gpus = sorted({k[0] for k in found} & gpu_ids)
    out: dict[tuple[str, str], Any] = {}
    for gpu in gpus:
        nccl = found.get((gpu, "comm", "nccl"), {})
        if "nccl_perf" in nccl:
            member = nccl["nccl_perf"]
            out[(gpu, "nccl")] = {
                "versions": {"nccl": _version_of(member)},
                "nccl": nccl_tables(read_rows(zf, member)),
            }
        for engine in ENGINES:
            doc: dict[str, Any] = {"versions": {}}

            def take(op: str, name: str, doc: dict[str, Any] = doc) -> list[dict[str, Any]]:
                member = found.get((gpu, op, engine), {}).get(name)  # noqa: B023
                if member is None:
                    return []
                doc["versions"][name] = _version_of(member)
                return read_rows(zf, member)

            if rows := take("gemm", "gemm_perf"):
                doc["gemm"] = gemm_tables(rows)
            if rows := take("moe", "moe_perf"):
                doc["moe"] = moe_tables(rows, shapes)
            deepep_moe: list[Any] = []
            for name, phase in (
                ("wideep_context_moe_perf", "prefill"),
                ("wideep_generation_moe_perf", "decode"),
            ):
                if rows := take("moe", name):
                    deepep_moe += deepep_moe_tables(rows, phase, shapes)
            if deepep_moe:
                doc["moe_deepep"] = deepep_moe
            attn: list[Any] = []
            for op_dir, name, op, phase in (
                ("sparse_attention", "dsa_context_module_perf", "module", "prefill"),
                ("sparse_attention", "dsa_generation_module_perf", "module", "decode"),
                ("mla", "mla_context_module_perf", "module", "prefill"),
                ("mla", "mla_generation_module_perf", "module", "decode"),
                ("mla", "context_mla_perf", "kernel", "prefill"),
                ("mla", "generation_mla_perf", "kernel", "decode"),
            ):
                if rows := take(op_dir, name):
                    attn += attention_tables(rows, op, phase)
            if attn:
                doc["attention"] = attn
            if rows := take("comm", "custom_allreduce_perf"):
                doc["all_reduce"] = allreduce_tables(rows)
            if rows := take("comm", "wideep_deepep_ll_perf"):
                doc["alltoall"] = deepep_tables(rows, "deepep_low_latency")
            if rows := take("comm", "wideep_deepep_normal_perf"):
                doc["alltoall_normal"] = deepep_tables(rows, "deepep_normal")
            if len(doc) > 1:
                out[(gpu, engine)] = doc
    return out


def _measured_on(source: str) -> str:
    """The measurement date a silicon row's source names (else the dump's date)."""
    m = re.search(r"measured=(\d{4}-\d{2}-\d{2})", source) or re.search(
        r"db-dump/(\d{4}-\d{2}-\d{2})", source
    )
    return m.group(1) if m else ""


def _int(v: str) -> int:
    return int(float(v)) if v else 1


def silicon_rows(zf: zipfile.ZipFile) -> list[dict[str, Any]]:
    """The measured aggregated points of models moerun knows (validation only)."""
    text = zf.read(SILICON).decode()
    keep = []
    for r in csv.DictReader(io.StringIO(text)):
        if r["model_path"] not in SILICON_MODELS or r["backend"] not in ENGINES:
            continue
        if r["mode"] != "agg" or not r["batch_size"]:
            continue
        keep.append(
            {
                "id": r["id"],
                "model": SILICON_MODELS[r["model_path"]],
                "model_path": r["model_path"],
                "gpu": r["system"],
                "engine": r["backend"],
                "engine_version": r["backend_version"],
                "precision": r["precision"],
                "isl": int(r["isl"]),
                "osl": int(r["osl"]),
                "concurrency": _int(r["batch_size"]) * _int(r["attention_dp_size"]),
                "tp": _int(r["tp_size"]),
                "attention_dp": _int(r["attention_dp_size"]),
                "moe_tp": _int(r["moe_tp_size"]),
                "moe_ep": _int(r["moe_ep_size"]),
                "ttft_ms": _sig(float(r["silicon_ttft_ms"])),
                "tpot_ms": _sig(float(r["silicon_tpot_ms"])),
                "source": r["silicon_data_source"],
                "as_of": _measured_on(r["silicon_data_source"]),
            }
        )
    return keep


def write_all(
    zf: zipfile.ZipFile, wheel: Path, version: str, out: Path, validation_out: Path
) -> list[Path]:
    """Extract every table and the validation points; returns the files written."""
    written = []
    docs = extract(zf, moe_shapes(MODELS_DIR), catalog_gpus(GPUS_YAML))
    for (gpu, engine), doc in sorted(docs.items()):
        path = out / gpu / f"{engine}.json.gz"
        path.parent.mkdir(parents=True, exist_ok=True)
        body = {"gpu": gpu, "engine": engine, "package": f"{PACKAGE}=={version}", **doc}
        text = json.dumps(body, separators=(",", ":")) + "\n"
        # mtime=0: the same tables give the same bytes
        path.write_bytes(gzip.compress(text.encode(), mtime=0))
        written.append(path)
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    today = datetime.date.today().isoformat()
    source = out / "SOURCE.yaml"
    source.write_text(
        "# Measured kernel tables (see scripts/extract_kernel_tables.py); do not edit by hand.\n"
        f"package: {PACKAGE}=={version}\n"
        f"source: https://pypi.org/project/{PACKAGE}/{version}/\n"
        f"wheel: {wheel.name}\n"
        f"sha256: {digest}\n"
        f"as_of: '{today}'\n"
        "license: Apache-2.0\n"
        f"notice: {json.dumps(LICENSE_NOTICE)}\n"
    )
    written.append(source)
    rows = silicon_rows(zf)
    validation_out.mkdir(parents=True, exist_ok=True)
    vpath = validation_out / "aic_silicon_sample.csv"
    with vpath.open("w", newline="") as f:
        if rows:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    vsource = validation_out / "SOURCE.yaml"
    vsource.write_text(
        "# aic_silicon_sample.csv: measured end-to-end serving points (a validation set: moerun\n"
        "# never fits to these rows). Written by scripts/extract_kernel_tables.py.\n"
        f"package: {PACKAGE}=={version}\n"
        f"source: https://pypi.org/project/{PACKAGE}/{version}/ ({SILICON})\n"
        f"sha256: {digest}\n"
        f"as_of: '{today}'\n"
        "license: Apache-2.0\n"
        f"notice: {json.dumps(LICENSE_NOTICE)}\n"
    )
    written.append(vsource)
    written.append(vpath)
    return written


def download(version: str, dest: Path) -> Path:
    """The published wheel, from PyPI, without dependencies."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "-q",
            "-d",
            str(dest),
            f"{PACKAGE}=={version}",
        ],
        check=True,
    )
    (wheel,) = dest.glob("*.whl")
    return wheel


def _ensure_pyarrow(argv: list[str]) -> None:
    """Re-run in a throw-away venv with pyarrow when this interpreter lacks it."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        if os.environ.get("MOERUN_EXTRACT_CHILD"):
            raise
        tmp = Path(tempfile.mkdtemp(prefix="moerun-kernels-"))
        subprocess.run([sys.executable, "-m", "venv", str(tmp / "venv")], check=True)
        py = tmp / "venv" / "bin" / "python"
        subprocess.run([str(py), "-m", "pip", "install", "-q", "pyarrow"], check=True)
        env = {**os.environ, "MOERUN_EXTRACT_CHILD": "1"}
        code = subprocess.run([str(py), __file__, *argv], env=env).returncode
        raise SystemExit(code) from None


def main(argv: list[str] | None = None) -> int:
    args_list = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--version", default=DEFAULT_VERSION)
    ap.add_argument("--wheel", type=Path, help="a downloaded wheel (default: pip download)")
    ap.add_argument("--out", type=Path, default=OUT_DIR)
    ap.add_argument("--validation-out", type=Path, default=VALIDATION_OUT)
    args = ap.parse_args(args_list)
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or download(args.version, Path(tmp))
        with zipfile.ZipFile(wheel) as zf:
            if any(n.endswith(".parquet") for n in zf.namelist()):
                _ensure_pyarrow(args_list)
            written = write_all(zf, wheel, args.version, args.out, args.validation_out)
    total = sum(p.stat().st_size for p in written)
    print(f"wrote {len(written)} files, {total / 1e6:.2f} MB, under {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
