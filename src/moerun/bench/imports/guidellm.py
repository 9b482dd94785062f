"""GuideLLM 0.8 `benchmarks.json` (`guidellm run --output kind=json`) as imported runs.

Each entry of `benchmarks` is one run. Its load: the strategy (`concurrent` with `streams`
= a closed loop of that many, `synchronous` = a closed loop of one, `throughput` = everything
at once, `constant` / `poisson` = a request rate) and the data spec (`synthetic_text` with
`prompt_tokens` / `output_tokens` and no spread = fixed lengths). Its metrics are recomputed
with moerun's definitions from every request's timings: start = `request_start`, first token
= `first_token_iteration` (reasoning counts, as in moerun), end = `last_token_iteration`,
tokens and cached prompt tokens from the server's usage (`input_metrics`, `output_metrics`).
GuideLLM's own `inter_token_latency_ms` is moerun's TPOT (it excludes the first token) and its
`time_per_output_token_ms` is not (it includes it); those aggregates are used only when the
file holds a sample of the requests rather than all of them. Incomplete requests (cancelled
when a benchmark's constraint ended it) are left out, as moerun leaves out requests in flight
at an interruption.
"""

from __future__ import annotations

from typing import Any

from moerun.bench.imports.imported import (
    ImportedFile,
    ImportedRun,
    aggregate_summary,
    dist,
    summary_from_results,
)
from moerun.core.load.metrics import RequestResult

_SPREAD = ("stdev", "min", "max")


def is_guidellm(doc: object) -> bool:
    """Whether a parsed JSON document is a GuideLLM benchmarks report."""
    return (
        isinstance(doc, dict)
        and isinstance(doc.get("benchmarks"), list)
        and "guidellm_version" in (doc.get("metadata") or {})
    )


def _lengths(doc: dict[str, Any]) -> dict[str, Any]:
    data = ((doc.get("config") or {}).get("spec") or {}).get("data") or []
    spec = data[0] if len(data) == 1 and isinstance(data[0], dict) else {}
    if spec.get("kind") != "synthetic_text" or spec.get("turns", 1) != 1:
        return {"workload": f"guidellm:{spec.get('kind', 'data')}"}
    fixed = all(
        spec.get(f"{name}_{s}") in (None, 0) or (s != "stdev" and spec[f"{name}_{s}"] == spec[name])
        for name in ("prompt_tokens", "output_tokens")
        for s in _SPREAD
    )
    kind = "fixed" if fixed else "guidellm:synthetic_text"
    return {"workload": kind, "isl": spec["prompt_tokens"], "osl": spec["output_tokens"]}


def _load(strategy: dict[str, Any]) -> dict[str, Any]:
    kind = strategy.get("type_")
    if kind == "concurrent":
        return {"concurrency": int(strategy["streams"])}
    if kind == "synchronous":
        return {"concurrency": 1}
    if kind == "throughput":
        return {"request_rate": "inf", "max_concurrency": strategy.get("max_concurrency")}
    if kind in ("constant", "poisson", "async"):
        return {"request_rate": float(strategy["rate"]), "arrivals": kind}
    return {"strategy": kind}


def _result(i: int, req: dict[str, Any], ok: bool) -> RequestResult | None:
    info = req.get("info") or {}
    t = info.get("timings") or {}
    start = t.get("request_start")
    if start is None:
        return None
    first = t.get("first_token_iteration")
    end = t.get("last_token_iteration") or t.get("request_end") or start
    n_in = (req.get("input_metrics") or {}).get("text_tokens") or 0
    n_out = (req.get("output_metrics") or {}).get("text_tokens") or 0
    cached = (req.get("input_metrics") or {}).get("cached_tokens") or 0
    return RequestResult(
        request_id=i,
        start_s=float(start),
        end_s=float(end if ok else (t.get("request_end") or end)),
        input_tokens=int(n_in),
        output_tokens=int(n_out) if ok else 0,
        first_token_s=None if first is None else float(first),
        cached_tokens=int(cached),
        ok=ok,
        error=None if ok else str(info.get("error") or "error"),
    )


def _from_aggregates(bench: dict[str, Any]) -> dict[str, object]:
    m = bench["metrics"]

    def stat(name: str, scale: float = 1.0) -> dict[str, float]:
        s = (m.get(name) or {}).get("successful") or {}
        pct = s.get("percentiles") or {}
        return dist(
            None if s.get("mean") is None else s["mean"] * scale,
            {q: None if pct.get(f"p{q}") is None else pct[f"p{q}"] * scale for q in (50, 90, 99)},
        )

    totals = m["request_totals"]
    done = int(totals["successful"])
    return aggregate_summary(
        num_requests=done + int(totals.get("errored", 0)),
        num_completed=done,
        duration_s=float(bench["duration"]),
        input_tokens=float(m["prompt_token_count"]["successful"]["total_sum"]),
        output_tokens=float(m["output_token_count"]["successful"]["total_sum"]),
        latencies_ms={
            "ttft_ms": stat("time_to_first_token_ms"),
            "tpot_ms": stat("inter_token_latency_ms"),
            "itl_ms": stat("inter_token_latency_ms"),
            "e2e_ms": stat("request_latency", 1e3),
        },
    )


def parse_guidellm(doc: dict[str, Any]) -> ImportedFile:
    """The runs of a GuideLLM report (KeyError/TypeError/ValueError if malformed)."""
    lengths = _lengths(doc)
    runs = []
    notes = []
    for j, bench in enumerate(doc["benchmarks"]):
        strategy = bench["config"]["strategy"]
        reqs = bench.get("requests") or {}
        ok_reqs = reqs.get("successful") or []
        bad_reqs = reqs.get("errored") or []
        totals = bench["metrics"]["request_totals"]
        results = [_result(i, r, True) for i, r in enumerate(ok_reqs)]
        results += [_result(len(ok_reqs) + i, r, False) for i, r in enumerate(bad_reqs)]
        complete = len(ok_reqs) == totals["successful"] and len(bad_reqs) == totals["errored"]
        if complete and results and all(r is not None for r in results):
            summary = summary_from_results([r for r in results if r is not None], None)
        else:
            summary = _from_aggregates(bench)
            notes.append(f"run {j}: GuideLLM kept a sample of the requests; its aggregates used")
        if totals.get("incomplete"):
            notes.append(f"run {j}: {totals['incomplete']} incomplete requests left out")
        load = _load(strategy)
        workload = {**lengths, **load, "num_requests": summary["num_requests"]}
        label = ", ".join(f"{k} {v}" for k, v in load.items() if v is not None) or f"run {j}"
        runs.append(ImportedRun(label, workload, summary))
    backend = ((doc.get("config") or {}).get("spec") or {}).get("backend") or {}
    return ImportedFile("guidellm", backend.get("model"), tuple(runs), tuple(notes))
