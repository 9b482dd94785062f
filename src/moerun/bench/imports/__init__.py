"""Results of other benchmark clients, read into moerun's metric definitions.

GuideLLM `benchmarks.json`, `vllm bench serve --save-result` JSON, AIPerf `profile_export.jsonl`
and inference-perf `summary_lifecycle_metrics.json` / `stage_N_lifecycle_metrics.json` become
`ImportedRun`s: the load as moerun's workload flags and the metrics as
`moerun.core.load.metrics.summarize` defines them (recomputed from per-request timings where
the file has them, mapped from the tool's aggregates otherwise). `moerun calibrate` fits them;
`moerun bench --import` compares them with `simulate`.
"""

from moerun.bench.imports.detect import read_imported
from moerun.bench.imports.imported import ImportedFile, ImportedRun

__all__ = ["ImportedFile", "ImportedRun", "read_imported"]
