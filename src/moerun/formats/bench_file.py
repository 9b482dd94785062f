"""The `moerun bench --output` results file (schema "moerun.bench/1")."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RequestEntry(_Strict):
    """One measured request; times in seconds from the run's start, chunks in ms offsets."""

    request_id: int
    session_id: int
    turn: int
    start_s: float
    end_s: float
    chunk_ms: list[float]
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    expected_input_tokens: int
    expected_output_tokens: int
    ok: bool
    error: str | None
    status: int


class RunEntry(_Strict):
    """One sweep point."""

    label: str
    workload: dict[str, Any]
    interrupted: bool
    num_unfinished: int = Field(ge=0)
    duration_s: float = Field(ge=0)
    prompt_salt: str | None = None
    started_unix_s: float | None = None
    summary: dict[str, Any]
    requests: list[RequestEntry]


class BenchFile(_Strict):
    """The whole results file."""

    schema_: Literal["moerun.bench/1"] = Field(alias="schema")
    tool: Literal["moerun bench"]
    created_unix_s: int
    url: str
    endpoint: str
    served_model: str
    token_rule: Literal["tokenizer", "words"]
    prompt_salt: str
    deployment: dict[str, Any] | None
    mtp_acceptance: float | None
    runs: list[RunEntry]
