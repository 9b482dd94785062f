"""The load generator (`moerun bench`) and its reports."""

from moerun.bench.http import HttpTransport
from moerun.bench.records import RequestRecord, summarize_records
from moerun.bench.results import BenchResults, RunResult, read_results, write_results
from moerun.bench.runner import BenchConfig, LoadGenerator, Outcome
from moerun.bench.transport import HttpResult, Transport

__all__ = [
    "BenchConfig",
    "BenchResults",
    "HttpResult",
    "HttpTransport",
    "LoadGenerator",
    "Outcome",
    "RequestRecord",
    "RunResult",
    "Transport",
    "read_results",
    "summarize_records",
    "write_results",
]
