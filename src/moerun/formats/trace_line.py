"""One line of a JSONL trace (`--workload trace.jsonl`); see core/load/trace.py."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class TraceLine(BaseModel):
    """One request; lines with the same session_id are the turns of one session."""

    model_config = ConfigDict(extra="forbid")

    input_tokens: int = Field(ge=0, description="the whole prompt, shared prefix included")
    output_tokens: int = Field(ge=1)
    arrival_s: float | None = Field(
        default=None,
        description="arrival of the request or its session; omit on every line for a closed loop",
    )
    session_id: str | int | None = None
    think_s: float | None = Field(default=None, ge=0, description="pause before this turn")
    prefix_id: str | None = Field(default=None, description="names a shared prefix")
    prefix_tokens: int | None = Field(default=None, ge=0)
