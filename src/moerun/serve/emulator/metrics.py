"""`/metrics` in the Prometheus text format, with vLLM's metric names.

Routers and autoscalers that read a vLLM server read the emulator the same way: requests
running and waiting, KV-cache usage (both the v0 and v1 names), prefix-cache queries and hits
in tokens, token and request counters, and a TTFT histogram (emulated seconds).
"""

from __future__ import annotations

from bisect import bisect_left

from moerun.serve.emulator.engine import EmulatedEngine

# vLLM's TTFT histogram buckets (vllm/v1/metrics/loggers.py)
TTFT_BUCKETS_S = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
    10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
)  # fmt: skip


class Histogram:
    """A cumulative histogram over fixed buckets."""

    def __init__(self, buckets: tuple[float, ...] = TTFT_BUCKETS_S) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.total = 0.0
        self.num = 0

    def observe(self, value: float) -> None:
        """Count one value."""
        self.counts[bisect_left(self.buckets, value)] += 1
        self.total += value
        self.num += 1

    def lines(self, name: str, labels: str) -> list[str]:
        """Exposition lines (`_bucket`, `_sum`, `_count`)."""
        out = [f"# HELP {name} Histogram of time to first token in seconds.",
               f"# TYPE {name} histogram"]  # fmt: skip
        running = 0
        for bound, count in zip(self.buckets, self.counts, strict=False):
            running += count
            out.append(f'{name}_bucket{{{labels},le="{bound}"}} {running}')
        out.append(f'{name}_bucket{{{labels},le="+Inf"}} {self.num}')
        out.append(f"{name}_sum{{{labels}}} {self.total}")
        out.append(f"{name}_count{{{labels}}} {self.num}")
        return out


def render(engine: EmulatedEngine, model_name: str, ttft: Histogram) -> str:
    """The whole exposition."""
    rep = engine.replica
    labels = f'model_name="{model_name}",engine="0"'
    usage = rep.kv_usage()
    gauges = (
        ("vllm:num_requests_running", "Number of requests in model execution batches.",
         rep.num_running),
        ("vllm:num_requests_waiting", "Number of requests waiting to be processed.",
         rep.num_waiting),
        ("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", usage),
        ("vllm:gpu_cache_usage_perc", "GPU KV-cache usage. 1 means 100 percent usage.", usage),
    )  # fmt: skip
    counters = (
        ("vllm:prefix_cache_queries", "Prefix cache queries, in terms of number of queried tokens.",
         rep.kv.query_tokens),
        ("vllm:prefix_cache_hits", "Prefix cache hits, in terms of number of cached tokens.",
         rep.kv.hit_tokens),
        ("vllm:prompt_tokens", "Number of prefill tokens processed.", engine.num_prompt_tokens),
        ("vllm:generation_tokens", "Number of generation tokens processed.",
         engine.num_generation_tokens),
        ("vllm:request_success", "Count of successfully processed requests.",
         engine.num_finished),
    )  # fmt: skip
    lines: list[str] = []
    for name, doc, value in gauges:
        lines += [f"# HELP {name} {doc}", f"# TYPE {name} gauge", f"{name}{{{labels}}} {value}"]
    for name, doc, value in counters:
        lines += [f"# HELP {name} {doc}", f"# TYPE {name} counter"]
        lines.append(f"{name}_total{{{labels}}} {float(value)}")
    lines += ttft.lines("vllm:time_to_first_token_seconds", labels)
    return "\n".join(lines) + "\n"
