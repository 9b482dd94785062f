"""inference-perf (kubernetes-sigs) lifecycle metrics as a run: `summary_lifecycle_metrics.json`
or one stage's `stage_N_lifecycle_metrics.json`.

Times in the file are seconds; distributions give mean, min, p10, median, p90, max (newer
versions add p0.1 ... p99.9). Mapping: TTFT = `time_to_first_token`; TPOT =
`time_per_output_token` (after the first token, as moerun's); ITL = `inter_token_latency`
(per chunk gap); E2E = `request_latency`. Throughputs are the file's (`throughput.*_per_sec`),
and the duration is the successes over `requests_per_sec`. The load: a stage file records
`requested_rate` (arrivals per second; the arrival process is in the run's config.yaml, so it
is recorded, not guessed); prompt and output lengths are called fixed only when their min
equals their max. Cached prompt tokens are used when the file has `prompt_tokens.cached`.
"""

from __future__ import annotations

from typing import Any

from moerun.bench.imports.imported import ImportedFile, ImportedRun, aggregate_summary, dist

_LATENCIES = {
    "time_to_first_token": "ttft_ms",
    "time_per_output_token": "tpot_ms",
    "inter_token_latency": "itl_ms",
    "request_latency": "e2e_ms",
}


def is_inference_perf(doc: object) -> bool:
    """Whether a parsed JSON document is inference-perf's lifecycle metrics."""
    return (
        isinstance(doc, dict)
        and isinstance(doc.get("successes"), dict)
        and "load_summary" in doc
        and "latency" in doc["successes"]
    )


def _ms(d: dict[str, Any] | None) -> dict[str, float]:
    d = d or {}

    def s(key: str) -> float | None:
        v = d.get(key)
        return None if v is None else float(v) * 1e3

    return dist(s("mean"), {50: s("median"), 90: s("p90"), 99: s("p99")})


def _length(d: dict[str, Any] | None) -> tuple[int, bool]:
    d = d or {}
    return round(float(d.get("mean", 0))), d.get("min") is not None and d.get("min") == d.get("max")


def parse_inference_perf(doc: dict[str, Any]) -> ImportedFile:
    """The run of an inference-perf lifecycle metrics file (KeyError/TypeError if malformed)."""
    ok = doc["successes"]
    done = int(ok["count"])
    failed = int((doc.get("failures") or {}).get("count") or 0)
    thr = ok["throughput"]
    duration = done / float(thr["requests_per_sec"]) if thr.get("requests_per_sec") else 0.0
    prompt = ok.get("prompt_tokens") or {}
    cached = prompt.get("cached")
    summary = aggregate_summary(
        num_requests=done + failed,
        num_completed=done,
        duration_s=duration,
        input_tokens=float(thr["input_tokens_per_sec"]) * duration,
        output_tokens=float(thr["output_tokens_per_sec"]) * duration,
        latencies_ms={ours: _ms(ok["latency"].get(theirs)) for theirs, ours in _LATENCIES.items()},
        cached_tokens=None if cached is None else float(cached),
    )
    isl, isl_fixed = _length(ok.get("prompt_len"))
    osl, osl_fixed = _length(ok.get("output_len"))
    kind = "fixed" if isl_fixed and osl_fixed else "inference-perf:lengths-vary"
    workload: dict[str, Any] = {"workload": kind, "isl": isl, "osl": osl}
    rate = (doc.get("load_summary") or {}).get("requested_rate")
    if rate is not None:
        workload["request_rate"] = float(rate)
        workload["arrivals"] = "see the run's config.yaml (constant or poisson)"
    workload["num_requests"] = done + failed
    label = f"rate {rate:g}/s" if isinstance(rate, int | float) else "summary"
    notes = () if isl_fixed and osl_fixed else ("prompt and output lengths vary: means kept",)
    return ImportedFile("inference-perf", None, (ImportedRun(label, workload, summary),), notes)
