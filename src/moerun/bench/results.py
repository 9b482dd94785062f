"""The results file of `moerun bench`: what ran, against what, and every request's timings.

Schema `moerun.bench/1` (a JSON object):
  schema, tool, created_unix_s
  url, endpoint ("chat" | "completions"), served_model, token_rule ("words" | "tokenizer"),
  prompt_salt     what varied the prompts' text (`--prompt-salt` repeats the run exactly)
  deployment      the deployment flags (snake_case, as `moerun simulate` takes them) or null;
                  tp/dp/ep/pp are the layout that was settled: the flags', else the default
                  rule's (`moerun.core.deploy.default_layout`, what `moerun emulate` runs)
  mtp_acceptance  the MTP acceptance rate assumed by --compare-sim, or null
  runs            one per sweep point:
    label, workload (the workload flags, snake_case; request_rate "inf" for a burst),
    interrupted, num_unfinished, duration_s,
    prompt_salt   what varied this run's prompt text (each sweep point has its own)
    started_unix_s  the wall-clock time (Unix seconds) the run started, or null
    summary       the shared metrics (moerun.core.load.metrics.summarize), as `--json` prints,
                  and workload_prefix_hit_rate: the prefix-cache hit rate the workload's
                  shared segments imply (moerun.core.load.prefix_reuse), beside the measured
                  prefix_cache_hit_rate (the server's usage.prompt_tokens_details.cached_tokens)
    requests      every request (moerun.bench.records.RequestRecord.to_json)
`moerun calibrate` reads the deployment, the workload and the requests of each run.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moerun.bench.records import RequestRecord
from moerun.errors import UsageError

SCHEMA = "moerun.bench/1"


@dataclass(frozen=True, slots=True)
class RunResult:
    """One sweep point as measured."""

    label: str
    workload: dict[str, Any]
    records: tuple[RequestRecord, ...]
    summary: dict[str, object]
    duration_s: float
    interrupted: bool = False
    num_unfinished: int = 0
    prompt_salt: str = ""
    started_unix_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The run's entry in the results file."""
        return {
            "label": self.label,
            "workload": jsonable(self.workload),
            "interrupted": self.interrupted,
            "num_unfinished": self.num_unfinished,
            "duration_s": round(self.duration_s, 6),
            "prompt_salt": self.prompt_salt,
            "started_unix_s": self.started_unix_s,
            "summary": jsonable(self.summary),
            "requests": [r.to_json() for r in self.records],
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> RunResult:
        """Inverse of `to_json`."""
        return cls(
            label=str(obj.get("label", "")),
            workload=dict(obj.get("workload", {})),
            records=tuple(RequestRecord.from_json(r) for r in obj.get("requests", [])),
            summary=dict(obj.get("summary", {})),
            duration_s=float(obj.get("duration_s", 0.0)),
            interrupted=bool(obj.get("interrupted", False)),
            num_unfinished=int(obj.get("num_unfinished", 0)),
            prompt_salt=str(obj.get("prompt_salt", "")),
            started_unix_s=obj.get("started_unix_s"),
        )


@dataclass(frozen=True, slots=True)
class BenchResults:
    """A whole results file."""

    url: str
    endpoint: str
    served_model: str
    token_rule: str
    prompt_salt: str
    deployment: dict[str, Any] | None
    mtp_acceptance: float | None
    runs: tuple[RunResult, ...]

    def to_json(self) -> dict[str, Any]:
        """The file's JSON object."""
        return {
            "schema": SCHEMA,
            "tool": "moerun bench",
            "created_unix_s": int(time.time()),
            "url": self.url,
            "endpoint": self.endpoint,
            "served_model": self.served_model,
            "token_rule": self.token_rule,
            "prompt_salt": self.prompt_salt,
            "deployment": self.deployment,
            "mtp_acceptance": self.mtp_acceptance,
            "runs": [r.to_json() for r in self.runs],
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> BenchResults:
        """Inverse of `to_json`."""
        return cls(
            url=str(obj["url"]),
            endpoint=str(obj["endpoint"]),
            served_model=str(obj["served_model"]),
            token_rule=str(obj.get("token_rule", "words")),
            prompt_salt=str(obj.get("prompt_salt", "")),
            deployment=obj.get("deployment"),
            mtp_acceptance=obj.get("mtp_acceptance"),
            runs=tuple(RunResult.from_json(r) for r in obj["runs"]),
        )


def write_results(path: Path, results: BenchResults) -> None:
    """Write the results file (atomically: a Ctrl-C mid-write leaves the old one)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(results.to_json(), separators=(",", ":")) + "\n", encoding="utf-8")
    tmp.replace(path)


def read_results(path: Path) -> BenchResults:
    """Read a results file; UsageError if it is not one."""
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise UsageError(f"{path} is not JSON: {exc}") from None
    if not isinstance(obj, dict) or obj.get("schema") != SCHEMA:
        raise UsageError(f"{path} is not a moerun bench results file (schema {SCHEMA})")
    try:
        return BenchResults.from_json(obj)
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"{path}: malformed results ({exc})") from None


def jsonable(value: Any) -> Any:
    """Replace non-finite floats (not JSON) with strings, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value
