"""A `moerun bench` run as a GuideLLM 0.8 benchmarks report (`--guidellm-report FILE`).

The document has the structure and field names of GuideLLM 0.8.1's `benchmarks.json`
(`guidellm run --output kind=json`), one entry of `benchmarks` per sweep point, so tools that
read GuideLLM's reports read moerun's runs. Times are Unix seconds on the endpoint's clock, as
every time in moerun's results file is (multiplied by `--time-scale` for a time-scaled
emulator): the first run starts at its wall-clock start (`RunResult.started_unix_s`), a later
run at the wall-clock gap since then times the scale, each request at its run's start plus
moerun's offsets. A results file without start times gives offsets from 0.

Per request, GuideLLM's timings from moerun's record: `request_start` = the request's start,
`first_token_iteration` = its first output chunk, `last_token_iteration` = its last output
chunk, `request_end` = its end (moerun ends a completed request at its last output chunk, so
the two are equal; GuideLLM's request_end is the stream's close, typically under a ms later).
The metrics follow GuideLLM's definitions (guidellm/schemas/base/request_stats.py) and its
statistics (`moerun.bench.guidellm_stats`):
  request_latency           seconds, request_end - request_start, per request
  time_to_first_token_ms    ms, first_token_iteration - request_start (moerun's TTFT)
  time_per_output_token_ms  ms, (last_token_iteration - request_start) / output tokens, each
                            request weighted by its output tokens: it includes the TTFT, so it
                            is NOT moerun's TPOT
  inter_token_latency_ms    ms, (last - first token) / (output tokens - 1), weighted by output
                            tokens - 1: per request this is moerun's TPOT (`tpot_ms`), not
                            moerun's pooled chunk gaps (`itl_ms`)
  prompt_token_count, output_token_count   the server's usage, per request
Left out, because moerun does not measure them as GuideLLM does or they describe GuideLLM's
own client: the time-weighted rate and concurrency distributions (`requests_per_second`,
`output_tokens_per_second`, `request_concurrency`, ...), GuideLLM's scheduler state and
timings, the statistics mode/variance/std_dev/min/max/pdf and confidence intervals, the HTTP
client's settings, per request the prompt and answer text; `config.spec.data` unless the
workload is fixed lengths without a shared prefix. Requests cancelled by Ctrl-C are counted
in `request_totals.incomplete`; moerun keeps no timings for them.
"""

from __future__ import annotations

import json
import math
import platform
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from moerun.bench.guidellm_stats import distribution_summary
from moerun.bench.records import RequestRecord
from moerun.bench.results import BenchResults, RunResult
from moerun.errors import UsageError

GUIDELLM_VERSION = "0.8.1"  # the version whose report structure this follows
REPORT_VERSION = 2  # GuideLLM's `metadata.version` for 0.8 reports
_ROUTES = {"chat": "/v1/chat/completions", "completions": "/v1/completions"}


# each metric's (value, weight) for one request; None: the request is not in its sample
_Metric = Callable[[RequestRecord], tuple[float, float] | None]


def _request_latency_s(r: RequestRecord) -> tuple[float, float] | None:
    return r.end_s - r.start_s, 1.0


def _ttft_ms(r: RequestRecord) -> tuple[float, float] | None:
    return None if not r.chunk_s else ((r.chunk_s[0] - r.start_s) * 1e3, 1.0)


def _tpot_ms(r: RequestRecord) -> tuple[float, float] | None:
    last = r.chunk_s[-1] if r.chunk_s else r.end_s
    n = r.output_tokens
    return ((last - r.start_s) * 1e3 / n if n else 0.0), float(n)


def _itl_ms(r: RequestRecord) -> tuple[float, float] | None:
    if not r.chunk_s:
        return None  # GuideLLM counts only requests that had a first token
    n = r.output_tokens
    value = (r.chunk_s[-1] - r.chunk_s[0]) * 1e3 / (n - 1) if n > 1 else 0.0
    return value, float(max(n - 1, 0))


_METRICS: dict[str, _Metric] = {
    "request_latency": _request_latency_s,
    "prompt_token_count": lambda r: (float(r.input_tokens), 1.0),
    "output_token_count": lambda r: (float(r.output_tokens), 1.0),
    "time_to_first_token_ms": _ttft_ms,
    "inter_token_latency_ms": _itl_ms,
    "time_per_output_token_ms": _tpot_ms,
}


def _summary(records: Sequence[RequestRecord], fn: _Metric) -> dict[str, object]:
    pairs = [p for r in records if (p := fn(r)) is not None]
    return distribution_summary([v for v, _ in pairs], [w for _, w in pairs])


def _request(r: RequestRecord, t0_s: float) -> dict[str, Any]:
    return {
        "request_id": str(r.request_id),
        "info": {
            "status": "completed" if r.ok else "errored",
            "error": r.error,
            "timings": {
                "request_start": t0_s + r.start_s,
                "first_token_iteration": t0_s + r.chunk_s[0] if r.chunk_s else None,
                "last_token_iteration": t0_s + r.chunk_s[-1] if r.chunk_s else None,
                "request_end": t0_s + r.end_s,
            },
        },
        "input_metrics": {"text_tokens": r.input_tokens, "cached_tokens": r.cached_tokens},
        "output_metrics": {"text_tokens": r.output_tokens},
    }


def _strategy(workload: dict[str, Any]) -> dict[str, Any]:
    """GuideLLM's scheduling strategy for moerun's load flags."""
    rate = workload.get("request_rate")
    if rate is not None:
        if math.isinf(float(rate)):
            return {"type_": "throughput"}  # everything at once
        return {"type_": "poisson", "rate": float(rate)}
    if workload.get("workload") in ("fixed", "agentic") or workload.get("concurrency"):
        streams = int(workload.get("concurrency") or 1)
        return {"type_": "concurrent", "streams": streams, "max_concurrency": streams,
                "rampup_duration": 0.0}  # fmt: skip
    return {"type_": "trace"}  # a trace's own arrival times: GuideLLM has no such strategy


def _benchmark(run: RunResult, t0: float) -> dict[str, Any]:
    ok = [r for r in run.records if r.ok]
    bad = [r for r in run.records if not r.ok]
    start = min((r.start_s for r in run.records), default=0.0)
    end = max((r.end_s for r in run.records), default=0.0)
    metrics: dict[str, Any] = {
        "request_totals": {
            "successful": len(ok),
            "errored": len(bad),
            "incomplete": run.num_unfinished,
            "total": len(ok) + len(bad) + run.num_unfinished,
        }
    }
    for name, fn in _METRICS.items():
        metrics[name] = {"successful": _summary(ok, fn), "errored": _summary(bad, fn)}
    return {
        "type_": "generative_benchmark",
        "config": {"strategy": _strategy(run.workload)},
        "metrics": metrics,
        "requests": {
            "successful": [_request(r, t0) for r in ok],
            "errored": [_request(r, t0) for r in bad],
            "incomplete": [],
        },
        "start_time": t0 + start,
        "end_time": t0 + end,
        "duration": end - start,
    }


def _data(workload: dict[str, Any]) -> list[dict[str, Any]] | None:
    """GuideLLM's synthetic data spec, for fixed lengths without a shared prefix."""
    if workload.get("workload") != "fixed" or workload.get("shared_prefix"):
        return None
    return [{"kind": "synthetic_text", "prompt_tokens": workload["isl"],
             "output_tokens": workload["osl"], "turns": 1}]  # fmt: skip


def _anchors(runs: Sequence[RunResult], time_scale: float) -> list[float]:
    """Each run's start on the endpoint's clock, in Unix seconds."""
    first = runs[0].started_unix_s if runs else None
    if first is None:
        return [0.0] * len(runs)
    return [first + ((r.started_unix_s or first) - first) * time_scale for r in runs]


def guidellm_report(
    results: BenchResults, out_path: str, *, time_scale: float = 1.0
) -> dict[str, Any]:
    """The GuideLLM 0.8 benchmarks report of a bench run (`out_path`: where it is written;
    `time_scale`: the endpoint's, which the run's times are already multiplied by)."""
    spec: dict[str, Any] = {
        "backend": {
            "kind": "openai_http",
            "target": results.url,
            "model": results.served_model,
            "request_format": _ROUTES.get(results.endpoint, results.endpoint),
            "stream": True,
        },
    }
    streams = [r.workload.get("concurrency") for r in results.runs]
    if results.runs and all(_strategy(r.workload)["type_"] == "concurrent" for r in results.runs):
        spec["profile"] = {"kind": "concurrent", "streams": [int(s or 1) for s in streams],
                           "rampup_duration": 0.0}  # fmt: skip
    counts = {r.workload.get("num_requests") for r in results.runs}
    if len(counts) == 1 and None not in counts:
        spec["constraints"] = [{"kind": "max_requests", "count": counts.pop()}]
    data = _data(results.runs[0].workload) if results.runs else None
    if data is not None and all(_data(r.workload) == data for r in results.runs):
        spec["data"] = data
    spec["outputs"] = [{"kind": "json", "path": out_path}]
    return {
        "metadata": {
            "version": REPORT_VERSION,
            "guidellm_version": GUIDELLM_VERSION,
            "python_version": platform.python_version(),
            "platform": platform.platform(),
        },
        "config": {"spec": spec},
        "benchmarks": [
            _benchmark(run, t0)
            for run, t0 in zip(results.runs, _anchors(results.runs, time_scale), strict=True)
        ],
    }


def write_guidellm_report(path: Path, results: BenchResults, *, time_scale: float = 1.0) -> None:
    """Write the report atomically (a temporary file renamed into place); UsageError with one
    line when it cannot be written, and nothing left behind."""
    doc = guidellm_report(results, str(path), time_scale=time_scale)
    text = json.dumps(doc, indent=2, allow_nan=False) + "\n"
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        reason = exc.strerror or str(exc)
        raise UsageError(f"--guidellm-report {path}: cannot write it: {reason}") from None
