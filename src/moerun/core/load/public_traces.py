"""Public LLM-serving traces as workloads: Mooncake's prefix-hash JSONL and Azure's CSV.

Mooncake (kvcache-ai/Mooncake `FAST25-release/traces`, the format AIPerf and SGLang replay):
one JSON object per line, `timestamp` (ms since the first request), `input_length`,
`output_length` and `hash_ids`, one id per 512-token block of the prompt; two requests whose
`hash_ids` start alike share those blocks of prompt text, so prefix sharing is real. Here a
block is a shared segment keyed by its id (`Session.blocks`); a last block shorter than 512
tokens is keyed by id and length, so it is shared only with a block of the same id and
length. Prompt tokens beyond the listed blocks are the request's own.

Azure LLM inference traces (Azure/AzurePublicDataset, 2023 and 2024): CSV with a header
`TIMESTAMP,ContextTokens,GeneratedTokens`; TIMESTAMP is a date and time such as
`2023-11-16 18:15:46.6805900`. They carry no prefix structure: every prompt is its own. A row
with 0 generated tokens is replayed as 1 (an engine always samples at least one token).

`scale_and_cap` replays a trace faster or slower and keeps its first requests.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from moerun.core.load.trace import TraceError
from moerun.core.load.workload import Arrival, Segment, Session, Turn, Workload

MOONCAKE_BLOCK_TOKENS = 512
AZURE_COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")


def is_mooncake_line(obj: Any) -> bool:
    """Whether a parsed JSONL line is in Mooncake's format."""
    return isinstance(obj, dict) and "input_length" in obj and "output_length" in obj


def _count(obj: dict[str, Any], name: str, lineno: int, *, minimum: int) -> int:
    value = obj.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise TraceError(f"line {lineno}: {name!r} must be an integer >= {minimum}, got {value!r}")
    return value


def mooncake_blocks(hash_ids: list[int], input_tokens: int, lineno: int) -> tuple[Segment, ...]:
    """The shared blocks of one request: 512 tokens per id, the last possibly shorter."""
    blocks: list[Segment] = []
    for i, h in enumerate(hash_ids):
        if not isinstance(h, int) or isinstance(h, bool):
            raise TraceError(f"line {lineno}: hash_ids must be integers, got {h!r}")
        n = min(MOONCAKE_BLOCK_TOKENS, input_tokens - i * MOONCAKE_BLOCK_TOKENS)
        if n <= 0:
            raise TraceError(
                f"line {lineno}: {len(hash_ids)} hash_ids of {MOONCAKE_BLOCK_TOKENS} tokens "
                f"need more than the {input_tokens} input tokens"
            )
        key = f"mc{h}" if n == MOONCAKE_BLOCK_TOKENS else f"mc{h}/{n}"
        blocks.append((key, n))
    return tuple(blocks)


def parse_mooncake(lines: Iterable[str]) -> Workload:
    """The workload of a Mooncake trace: one single-turn session per line, at its timestamp."""
    sessions: list[Session] = []
    for lineno, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise TraceError(f"line {lineno}: not JSON ({exc.msg})") from None
        if not is_mooncake_line(obj):
            raise TraceError(f"line {lineno}: expected input_length and output_length")
        n_in = _count(obj, "input_length", lineno, minimum=1)
        n_out = _count(obj, "output_length", lineno, minimum=1)
        ts = obj.get("timestamp", 0)
        if not isinstance(ts, int | float) or isinstance(ts, bool) or ts < 0:
            raise TraceError(f"line {lineno}: 'timestamp' must be ms >= 0, got {ts!r}")
        hash_ids = obj.get("hash_ids") or []
        if not isinstance(hash_ids, list):
            raise TraceError(f"line {lineno}: 'hash_ids' must be a list")
        blocks = mooncake_blocks(hash_ids, n_in, lineno)
        own = n_in - sum(n for _, n in blocks)
        sessions.append(
            Session(len(sessions), (Turn(own, n_out),), start_s=ts / 1e3, blocks=blocks)
        )
    if not sessions:
        raise TraceError("the trace has no requests")
    return Workload("mooncake", tuple(sessions), Arrival("trace"))


def _azure_time_s(text: str, lineno: int) -> float:
    """Seconds since the epoch of `2023-11-16 18:15:46.6805900` (7 fraction digits allowed)."""
    whole, _, frac = text.strip().partition(".")
    try:
        t = dt.datetime.strptime(whole, "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.UTC)
        return t.timestamp() + (float(f"0.{frac}") if frac else 0.0)
    except ValueError:
        msg = f"line {lineno}: TIMESTAMP {text!r} is not 'YYYY-MM-DD HH:MM:SS.f'"
        raise TraceError(msg) from None


def parse_azure_csv(lines: Iterable[str]) -> Workload:
    """The workload of an Azure LLM inference trace CSV: one request per row, at its time."""
    reader = csv.DictReader(lines)
    missing = [c for c in AZURE_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise TraceError(f"not an Azure LLM inference trace: missing column(s) {missing}")
    rows: list[tuple[float, int, int]] = []
    for lineno, row in enumerate(reader, start=2):
        try:
            n_in, n_out = int(row["ContextTokens"]), int(row["GeneratedTokens"])
        except (TypeError, ValueError):
            msg = f"line {lineno}: ContextTokens and GeneratedTokens must be integers"
            raise TraceError(msg) from None
        if n_in < 1 or n_out < 0:
            raise TraceError(f"line {lineno}: ContextTokens must be >= 1, GeneratedTokens >= 0")
        rows.append((_azure_time_s(row["TIMESTAMP"], lineno), n_in, max(n_out, 1)))
    if not rows:
        raise TraceError("the trace has no requests")
    t0 = min(t for t, _, _ in rows)
    sessions = tuple(
        Session(i, (Turn(n_in, n_out),), start_s=t - t0) for i, (t, n_in, n_out) in enumerate(rows)
    )
    return Workload("azure", sessions, Arrival("trace"))


def scale_and_cap(workload: Workload, *, speedup: float, max_requests: int | None) -> Workload:
    """Replay `speedup` times faster (arrival times divided by it) and keep the sessions that
    start first while their requests number at most `max_requests` (at least one session)."""
    if speedup <= 0:
        raise ValueError("the trace speed-up must be positive")
    order = sorted(workload.sessions, key=lambda s: (s.start_s or 0.0, s.session_id))
    kept: list[Session] = []
    num = 0
    for s in order:
        if max_requests is not None and kept and num + len(s.turns) > max_requests:
            break
        num += len(s.turns)
        start = None if s.start_s is None else s.start_s / speedup
        kept.append(replace(s, session_id=len(kept), start_s=start))
    return Workload(workload.name, tuple(kept), workload.arrival)
