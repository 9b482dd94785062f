"""plan.yaml (`moerun plan --config`): every key optional; flags win over the file."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VolumeSection(_Strict):
    """Daily volume: requests or tokens per day (not both), and its hourly shape."""

    requests_per_day: float | None = Field(default=None, gt=0)
    tokens_per_day: float | None = Field(default=None, gt=0)
    peak_to_average: float | None = Field(default=None, ge=1)
    hourly_profile: list[float] | None = Field(default=None, min_length=1)


class SloSection(_Strict):
    """p99 bounds, and an optional per-user decode speed."""

    ttft_p99_ms: float | None = Field(default=None, gt=0)
    tpot_p99_ms: float | None = Field(default=None, gt=0)
    min_tokens_per_s: float | None = Field(default=None, gt=0)


class PolicySection(_Strict):
    """The data-governance policy (the gateway's schema): a hard filter."""

    allowed_jurisdictions: list[str] = Field(default=[], description="ISO 3166 alpha-2 or EU")
    required_certifications: list[str] = []
    jurisdictions: list[str] | None = Field(default=None, description="short spelling")
    certifications: list[str] | None = Field(default=None, description="short spelling")
    zero_retention: bool = False
    self_hosted_only: bool = False


class SearchSection(_Strict):
    """Bounds of the self-hosted search."""

    gpus: list[str] | None = None
    nodes: list[int] | None = None
    weights: list[str] | None = None
    engines: list[str] | None = None
    mtp: list[int] | None = None
    pricing: list[str] | None = None
    disaggregation: bool | None = None
    simulate: bool | None = None
    allow_unverified: bool | None = None


class PlanConfig(_Strict):
    """The whole plan.yaml."""

    model: str | None = None
    workload: str | dict[str, Any] | None = Field(
        default=None, description="a preset name, or {preset: NAME, <preset field>: value}"
    )
    volume: VolumeSection | None = None
    slo: SloSection | None = None
    policy: PolicySection | None = None
    gpu_clouds: list[str] | None = Field(default=None, description="[] allows none")
    providers: list[str] | None = None
    budget_usd_per_month: float | None = Field(default=None, gt=0)
    prices: str | None = Field(default=None, description="path of a --prices file")
    search: SearchSection | None = None
