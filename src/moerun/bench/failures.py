"""Failed requests of a bench run, by kind: what the exit status and the summary line say."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from moerun.bench.records import RequestRecord


def error_kind(record: RequestRecord) -> str:
    """A short kind for a failed request: `HTTP 404`, `timeout`, `connect`, `dropped`, ..."""
    if record.status and record.status != 200:
        return f"HTTP {record.status}"
    text = (record.error or "").lower()
    if text.startswith("timed out"):
        return "timeout"
    if text.startswith("cannot connect"):
        return "connect"
    if text.startswith("connection closed"):
        return "dropped"
    if text.startswith("error in stream"):
        return "stream error"
    return "bad response"


def error_counts(records: Sequence[RequestRecord]) -> Counter[str]:
    """Failed requests by kind."""
    return Counter(error_kind(r) for r in records if not r.ok)


def failure_line(records: Sequence[RequestRecord]) -> str | None:
    """One line for the end of a run: None when every request succeeded; when none did, the
    first error (once); otherwise how many failed, by kind."""
    failed = [r for r in records if not r.ok]
    if not failed:
        return None
    if len(failed) == len(records):
        first = min(failed, key=lambda r: (r.start_s, r.request_id))
        reason = (first.error or error_kind(first)).rstrip(".")
        return f"every request failed ({len(failed)} of {len(records)}), the first with {reason}"

    kinds = ", ".join(f"{k} x{n}" for k, n in error_counts(failed).most_common())
    return f"{len(failed)} of {len(records)} requests failed: {kinds}"
