"""What the load generator keeps of each request, and the shared metrics computed from it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from moerun.core.load.metrics import RequestResult, Slo, summarize


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request as measured: times in seconds from the run's start, token counts from
    the server's usage (the workload's numbers are kept as `expected_*`)."""

    request_id: int
    session_id: int
    turn: int
    start_s: float
    end_s: float
    chunk_s: tuple[float, ...]  # arrival of every output chunk
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    expected_input_tokens: int
    expected_output_tokens: int
    ok: bool = True
    error: str | None = None
    status: int = 200

    @property
    def first_token_s(self) -> float | None:
        """Arrival of the first output chunk."""
        return self.chunk_s[0] if self.chunk_s else None

    def result(self) -> RequestResult:
        """The record as the shared metrics see it."""
        return RequestResult(
            request_id=self.request_id,
            start_s=self.start_s,
            end_s=self.end_s,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            first_token_s=self.first_token_s,
            cached_tokens=self.cached_tokens,
            session_id=self.session_id,
            turn=self.turn,
            ok=self.ok,
            error=self.error,
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON object; chunk times become ms offsets from the request's start."""
        return {
            "request_id": self.request_id,
            "session_id": self.session_id,
            "turn": self.turn,
            "start_s": round(self.start_s, 6),
            "end_s": round(self.end_s, 6),
            "chunk_ms": [round((t - self.start_s) * 1e3, 3) for t in self.chunk_s],
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_tokens": self.cached_tokens,
            "expected_input_tokens": self.expected_input_tokens,
            "expected_output_tokens": self.expected_output_tokens,
            "ok": self.ok,
            "error": self.error,
            "status": self.status,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> RequestRecord:
        """Inverse of `to_json` (to the microsecond)."""
        start = float(obj["start_s"])
        return cls(
            request_id=int(obj["request_id"]),
            session_id=int(obj["session_id"]),
            turn=int(obj["turn"]),
            start_s=start,
            end_s=float(obj["end_s"]),
            chunk_s=tuple(start + ms / 1e3 for ms in obj.get("chunk_ms", [])),
            input_tokens=int(obj["input_tokens"]),
            output_tokens=int(obj["output_tokens"]),
            cached_tokens=int(obj.get("cached_tokens", 0)),
            expected_input_tokens=int(obj.get("expected_input_tokens", obj["input_tokens"])),
            expected_output_tokens=int(obj.get("expected_output_tokens", obj["output_tokens"])),
            ok=bool(obj.get("ok", True)),
            error=obj.get("error"),
            status=int(obj.get("status", 200)),
        )


def pooled_itl_ms(records: Sequence[RequestRecord]) -> np.ndarray:
    """Every gap between successive output chunks of completed requests, pooled (ms)."""
    gaps = [np.diff(np.asarray(r.chunk_s)) for r in records if r.ok and len(r.chunk_s) > 1]
    if not gaps:
        return np.zeros(0)
    return np.concatenate(gaps) * 1e3


def summarize_records(
    records: Sequence[RequestRecord], *, num_gpus: int, slo: Slo | None = None
) -> dict[str, object]:
    """The shared metric report (moerun.core.load.metrics) of a measured run."""
    return summarize(
        [r.result() for r in records], num_gpus=num_gpus, itl_ms=pooled_itl_ms(records), slo=slo
    )
