"""AIPerf `profile_export.jsonl` (one record per request) as a run, its load from the
`profile_export_aiperf.json` beside it when present.

A record is `{"metadata": {..., "request_start_ns", "request_end_ns", "benchmark_phase",
"was_cancelled"}, "metrics": {name: {"value", "unit"}}, "error": ...}`. moerun's timings are
rebuilt per request: start = `request_start_ns`; first token = start + `time_to_first_token`
(reasoning tokens count, as in moerun); every later chunk after `inter_chunk_latency` (so ITL
is the pooled chunk gaps, as moerun measures it); end = the last chunk. Tokens:
`input_sequence_length` and `output_sequence_length` (the server's usage when AIPerf used it);
cached prompt tokens: `usage_prompt_cache_read_tokens`. Warm-up records are left out, and so
are cancelled ones. The load (`input_config.phases`: concurrency or request rate;
`input_config.datasets[].prompts` isl/osl mean and stddev, stddev 0 = fixed) comes from the
aggregate file when it is there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from moerun.bench.imports.imported import ImportedFile, ImportedRun
from moerun.core.load.metrics import RequestResult, summarize

AGGREGATE = "profile_export_aiperf.json"


def is_aiperf_record(obj: object) -> bool:
    """Whether a parsed JSONL line is an AIPerf per-request record."""
    return (
        isinstance(obj, dict)
        and isinstance(obj.get("metadata"), dict)
        and isinstance(obj.get("metrics"), dict)
        and "request_start_ns" in obj["metadata"]
    )


def _value(metrics: dict[str, Any], name: str) -> Any:
    m = metrics.get(name)
    return m.get("value") if isinstance(m, dict) else None


def _record(i: int, rec: dict[str, Any]) -> tuple[RequestResult, list[float]] | None:
    meta, metrics = rec["metadata"], rec["metrics"]
    if meta.get("benchmark_phase", "profiling") != "profiling" or meta.get("was_cancelled"):
        return None
    start = int(meta["request_start_ns"]) / 1e9
    end = int(meta.get("request_end_ns") or meta["request_start_ns"]) / 1e9
    n_in = int(_value(metrics, "input_sequence_length") or 0)
    cached = int(_value(metrics, "usage_prompt_cache_read_tokens") or 0)
    if rec.get("error"):
        return RequestResult(i, start, end, n_in, 0, ok=False, error=str(rec["error"])), []
    ttft_ms = _value(metrics, "time_to_first_token")
    gaps = [float(g) for g in _value(metrics, "inter_chunk_latency") or []]
    first = None if ttft_ms is None else start + float(ttft_ms) / 1e3
    if first is not None:
        end = first + sum(gaps) / 1e3
    n_out = int(_value(metrics, "output_sequence_length") or 0)
    return RequestResult(i, start, end, n_in, n_out, first, cached), gaps


def _load(config: dict[str, Any]) -> tuple[dict[str, Any], str]:
    workload: dict[str, Any] = {}
    datasets = config.get("datasets") or []
    prompts = (datasets[0].get("prompts") or {}) if len(datasets) == 1 else {}
    isl, osl = prompts.get("isl") or {}, prompts.get("osl") or {}
    if isl.get("mean") is not None and osl.get("mean") is not None:
        fixed = not isl.get("stddev") and not osl.get("stddev")
        workload = {"workload": "fixed" if fixed else "aiperf:synthetic",
                    "isl": round(isl["mean"]), "osl": round(osl["mean"])}  # fmt: skip
    phases: list[dict[str, Any]] = config.get("phases") or []
    phase: dict[str, Any] = next((p for p in phases if p.get("kind") == "profiling"), {})
    label = "profile"
    if phase.get("type") == "concurrency" and phase.get("concurrency"):
        workload["concurrency"] = int(phase["concurrency"])
        label = f"concurrency {phase['concurrency']}"
    elif phase.get("request_rate") is not None:
        workload["request_rate"] = float(phase["request_rate"])
        label = f"rate {phase['request_rate']}/s"
    return workload, label


def parse_aiperf_jsonl(lines: list[str], path: Path) -> ImportedFile:
    """The run of an AIPerf per-request export (ValueError/KeyError/TypeError if malformed)."""
    results: list[RequestResult] = []
    gaps: list[float] = []
    for line in lines:
        if not line.strip():
            continue
        got = _record(len(results), json.loads(line))
        if got is not None:
            results.append(got[0])
            gaps.extend(got[1])
    if not results:
        raise ValueError("no profiling records")
    summary = summarize(results, num_gpus=1, itl_ms=np.asarray(gaps))
    for key in ("output_tok_per_s_per_gpu", "input_tok_per_s_per_gpu"):
        del summary[key]  # the file does not say how many GPUs served it
    aggregate = path.with_name(AGGREGATE)
    config: dict[str, Any] = {}
    notes: tuple[str, ...] = ()
    if aggregate.is_file():
        config = json.loads(aggregate.read_text(encoding="utf-8")).get("input_config") or {}
    else:
        notes = (f"no {AGGREGATE} beside it: the load is unknown",)
    workload, label = _load(config)
    workload["num_requests"] = len(results)
    models = ((config.get("models") or {}).get("items") or [{}])[0].get("name")
    return ImportedFile("aiperf", models, (ImportedRun(label, workload, summary),), notes)
