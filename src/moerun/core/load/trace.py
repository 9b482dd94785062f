"""JSONL traces: one request per line, replayed as a workload.

A line is a JSON object:
  input_tokens   int, required   the whole prompt, shared prefix included
  output_tokens  int, required
  arrival_s      float           when the request (or its session's first turn) arrives;
                                 omit it on every line for a closed loop
  session_id     str or int      lines with the same id are the turns of one session, in file
                                 order: each turn's prompt continues the previous turn's
                                 prompt and output, so its input_tokens must be at least
                                 their sum; a later turn starts `think_s` after the previous
  think_s        float           pause before this turn (default 0)
  prefix_id      str             the first `prefix_tokens` tokens are shared by every line
  prefix_tokens  int             with the same prefix_id (a system prompt)
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from moerun.core.load.workload import Arrival, Session, Turn, Workload

TRACE_FIELDS = (
    "input_tokens",
    "output_tokens",
    "arrival_s",
    "session_id",
    "think_s",
    "prefix_id",
    "prefix_tokens",
)


class TraceError(ValueError):
    """A trace line that cannot be used; the message names the line."""


@dataclass
class _SessionBuild:
    start_s: float | None
    prefix_id: str | None
    prefix_tokens: int
    context: int
    turns: list[Turn] = field(default_factory=list)


def _int_field(obj: dict[str, Any], name: str, lineno: int, *, required: bool) -> int | None:
    value = obj.get(name)
    if value is None:
        if required:
            raise TraceError(f"line {lineno}: {name!r} is required")
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise TraceError(f"line {lineno}: {name!r} must be a non-negative integer, got {value!r}")
    return value


def _float_field(obj: dict[str, Any], name: str, lineno: int) -> float | None:
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise TraceError(f"line {lineno}: {name!r} must be a non-negative number, got {value!r}")
    return float(value)


def parse_trace(lines: Iterable[str], *, concurrency: int | None = None) -> Workload:
    """The workload a JSONL trace describes; `concurrency` applies when no line has a time."""
    builds: dict[str, _SessionBuild] = {}
    order: list[str] = []
    timed: set[bool] = set()
    for lineno, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise TraceError(f"line {lineno}: not JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise TraceError(f"line {lineno}: expected a JSON object")
        unknown = sorted(set(obj) - set(TRACE_FIELDS))
        if unknown:
            raise TraceError(f"line {lineno}: unknown field(s) {unknown}; known: {TRACE_FIELDS}")
        n_in = _int_field(obj, "input_tokens", lineno, required=True) or 0
        n_out = _int_field(obj, "output_tokens", lineno, required=True) or 0
        if n_out < 1:
            raise TraceError(f"line {lineno}: output_tokens must be at least 1")
        arrival_s = _float_field(obj, "arrival_s", lineno)
        think = _float_field(obj, "think_s", lineno) or 0.0
        sid = obj.get("session_id")
        key = f"line{lineno}" if sid is None else f"id:{sid}"
        build = builds.get(key)
        if build is None:
            timed.add(arrival_s is not None)
            prefix_tokens = _int_field(obj, "prefix_tokens", lineno, required=False) or 0
            prefix_id = obj.get("prefix_id")
            if prefix_tokens and not isinstance(prefix_id, str):
                raise TraceError(f"line {lineno}: prefix_tokens needs a string prefix_id")
            if prefix_tokens > n_in:
                raise TraceError(f"line {lineno}: prefix_tokens exceeds input_tokens")
            build = _SessionBuild(arrival_s, prefix_id if prefix_tokens else None, prefix_tokens, 0)
            builds[key] = build
            order.append(key)
            new_in = n_in - prefix_tokens
        else:
            new_in = n_in - build.context
            if new_in < 0:
                raise TraceError(
                    f"line {lineno}: session {sid!r} turn {len(build.turns) + 1} has "
                    f"{n_in} input tokens, fewer than the {build.context} of the previous "
                    "turn's prompt and output it continues"
                )
        build.turns.append(Turn(new_in, n_out, think))
        build.context = n_in + n_out
    if not order:
        raise TraceError("the trace has no requests")
    if len(timed) > 1:
        raise TraceError("give arrival_s on every session's first line or on none")
    closed = Arrival("closed", concurrency=concurrency or 1)
    arrival = Arrival("trace") if True in timed else closed
    sessions = tuple(
        Session(
            session_id=i,
            turns=tuple(builds[k].turns),
            system_key=None if builds[k].prefix_id is None else f"prefix:{builds[k].prefix_id}",
            system_tokens=builds[k].prefix_tokens,
            start_s=builds[k].start_s,
        )
        for i, k in enumerate(order)
    )
    return Workload("trace", sessions, arrival)
