"""`vllm bench serve --save-result` JSON (and `benchmarks/benchmark_serving.py`'s) as a run.

The file is one run: `num_prompts`, `request_rate` ("inf" or a number), `max_concurrency`,
`burstiness`, then the metrics: `completed`, `failed`, `duration` (s), `total_input_tokens`,
`total_output_tokens`, and per latency metric (ttft, tpot, itl, e2el) `mean_*_ms`,
`median_*_ms`, `p<q>_*_ms` for the percentiles asked with `--metric-percentiles`. vLLM's
definitions are moerun's (`moerun.core.load.metrics` follows them): TTFT, TPOT excluding the
first token, ITL pooled over chunk gaps, E2E. The prompt and output lengths are not in the
file; with `--save-detailed` the per-request `input_lens` / `output_lens` say them (equal
lengths = a fixed-length workload); otherwise the means of the totals are recorded and the
workload is not called fixed. `--request-rate inf --max-concurrency N` is a closed loop of N.
Prefix-cache hits are not in the file.
"""

from __future__ import annotations

from typing import Any

from moerun.bench.imports.imported import ImportedFile, ImportedRun, aggregate_summary, dist

_METRICS = {"ttft": "ttft_ms", "tpot": "tpot_ms", "itl": "itl_ms", "e2el": "e2e_ms"}


def is_vllm_bench(doc: object) -> bool:
    """Whether a parsed JSON document is a `vllm bench serve` result."""
    return (
        isinstance(doc, dict)
        and "mean_ttft_ms" in doc
        and "output_throughput" in doc
        and "completed" in doc
    )


def _fixed_length(values: Any) -> int | None:
    if isinstance(values, list) and values and len(set(values)) == 1:
        return int(values[0])
    return None


def parse_vllm_bench(doc: dict[str, Any]) -> ImportedFile:
    """The run of a `vllm bench serve` result (KeyError/TypeError/ValueError if malformed)."""
    done = int(doc["completed"])
    failed = int(doc.get("failed") or 0)
    latencies = {
        ours: dist(
            doc.get(f"mean_{name}_ms"),
            {
                q: doc.get(f"median_{name}_ms" if q == 50 else f"p{q}_{name}_ms")
                for q in (50, 90, 99)
            },
        )
        for name, ours in _METRICS.items()
    }
    n_in, n_out = float(doc["total_input_tokens"]), float(doc["total_output_tokens"])
    summary = aggregate_summary(
        num_requests=done + failed,
        num_completed=done,
        duration_s=float(doc["duration"]),
        input_tokens=n_in,
        output_tokens=n_out,
        latencies_ms=latencies,
    )
    isl, osl = _fixed_length(doc.get("input_lens")), _fixed_length(doc.get("output_lens"))
    notes = []
    if isl is None or osl is None:
        notes.append("the file has no per-request lengths (--save-detailed): mean lengths kept")
        workload: dict[str, Any] = {
            "workload": "vllm:mean-lengths",
            "isl": round(n_in / done) if done else 0,
            "osl": round(n_out / done) if done else 0,
        }
    else:
        workload = {"workload": "fixed", "isl": isl, "osl": osl}
    rate = doc.get("request_rate", "inf")
    conc = doc.get("max_concurrency")
    if rate in ("inf", float("inf")) and conc:
        workload["concurrency"] = int(conc)
        label = f"concurrency {conc}"
    else:
        workload["request_rate"] = rate
        workload["burstiness"] = doc.get("burstiness", 1.0)
        label = f"rate {rate}/s" + (f", max concurrency {conc}" if conc else "")
    workload["num_requests"] = done + failed
    run = ImportedRun(label, workload, summary)
    return ImportedFile("vllm bench serve", doc.get("model_id"), (run,), tuple(notes))
