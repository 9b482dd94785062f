"""Read another tool's results file, recognising the tool by its content."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from moerun.bench.imports.aiperf import is_aiperf_record, parse_aiperf_jsonl
from moerun.bench.imports.guidellm import is_guidellm, parse_guidellm
from moerun.bench.imports.imported import ImportedFile
from moerun.bench.imports.inference_perf import is_inference_perf, parse_inference_perf
from moerun.bench.imports.vllm_bench import is_vllm_bench, parse_vllm_bench
from moerun.errors import UsageError

KNOWN = (
    "GuideLLM benchmarks.json, vllm bench serve JSON, inference-perf lifecycle metrics, "
    "AIPerf profile_export.jsonl"
)


def parse_document(doc: Any, where: str) -> ImportedFile | None:
    """The runs of a parsed JSON document of a known tool; None when no tool is recognised;
    UsageError when it is recognised but malformed."""
    parsers = (
        (is_guidellm, parse_guidellm),
        (is_vllm_bench, parse_vllm_bench),
        (is_inference_perf, parse_inference_perf),
    )
    for test, parse in parsers:
        if test(doc):
            try:
                return parse(doc)
            except (KeyError, TypeError, ValueError, IndexError) as exc:
                raise UsageError(
                    f"{where}: malformed {parse.__name__[6:]} results ({exc!r})"
                ) from None
    return None


def read_imported(path: Path) -> ImportedFile | None:
    """The runs in `path` if another tool wrote it; None if it is not one of theirs."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    try:
        doc = json.loads(text)
    except ValueError:
        return _jsonl(text, path)
    return parse_document(doc, str(path))


def _jsonl(text: str, path: Path) -> ImportedFile | None:
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), "")
    try:
        if not is_aiperf_record(json.loads(first)):
            return None
    except ValueError:
        return None
    try:
        return parse_aiperf_jsonl(lines, path)
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"{path}: malformed AIPerf profile export ({exc!r})") from None
