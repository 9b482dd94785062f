"""Pydantic schemas of the catalog's YAML files; used only to validate them on load."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from moerun.core.deploy.hardware import COMPUTE_DTYPES
from moerun.core.market.pricing import PRICING_KINDS
from moerun.core.market.providers import CERT_STATUSES, CERTIFICATIONS, RETENTION_CLASSES

# Vocabularies come from core; mypy cannot read a Literal built from a tuple, pydantic can.
CertName = Literal[CERTIFICATIONS]  # type: ignore[valid-type]
CertStatus = Literal[CERT_STATUSES]  # type: ignore[valid-type]
Retention = Literal[RETENTION_CLASSES]  # type: ignore[valid-type]
ComputeDtype = Literal[COMPUTE_DTYPES]  # type: ignore[valid-type]
Pricing = Literal[PRICING_KINDS]  # type: ignore[valid-type]
Precision = Literal["fp8", "fp4", "bf16", "mixed", "upstream", "unknown"]


def _not_eu(code: str) -> str:
    if code == "EU":
        raise ValueError('"EU" is not a country; list member states, EU is matched in code')
    return code


# ISO 3166-1 alpha-2; "EU" is not a country and is matched in code, never stored.
CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$"), AfterValidator(_not_eu)]
SourceIds = list[str]


class _Strict(BaseModel):
    """Base: unknown keys are errors, so a typo in a field name cannot pass silently."""

    model_config = ConfigDict(extra="forbid", strict=True)


class SourceEntry(_Strict):
    """One citable source: what it is, where to find it, and its date as found."""

    title: str = Field(min_length=1)
    ref: str = Field(min_length=1)
    date: str = Field(min_length=1)


class _Cited(_Strict):
    """Fields every catalog entry carries: its sources and the date they speak for."""

    source: SourceIds = Field(min_length=1)
    as_of: str = Field(min_length=1)


class GpuEntry(_Cited):
    """One GPU in gpus.yaml."""

    id: str = Field(pattern=r"^[a-z0-9_]+$")
    name: str
    vendor: Literal["nvidia", "amd"]
    memory_mib: int | None = Field(gt=0)
    memory_reported: bool
    memory_source: SourceIds
    memory_note: str
    marketed_memory_gb: float = Field(gt=0)
    memory_type: str
    mem_bw_tbps: float = Field(gt=0)
    dense_tflops: dict[ComputeDtype, float] = Field(min_length=1)
    scale_up_fabric: str
    scale_up_bw_gbps: float | None = Field(gt=0)
    scale_up_bw_direction: Literal["bidirectional", "per_direction"] | None
    scale_up_domain_gpus: int | None = Field(gt=0)
    scale_out_gbps_per_gpu: float | None = Field(gt=0)
    scale_out_network: str
    scale_out_source: SourceIds = []
    gpus_per_node: int = Field(gt=0)
    tdp_w: float | None = Field(gt=0)
    notes: str = ""
    # The day the figures speak for when `as_of` is not one (the earliest day it allows).
    as_of_iso: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")


class GpusFile(_Strict):
    """gpus.yaml."""

    schema_: Literal[1] = Field(alias="schema")
    compiled: str
    scale_out_assumed_gbps_per_gpu: float = Field(gt=0)
    scale_out_assumed_source: SourceIds
    gpus: list[GpuEntry] = Field(min_length=1)
    sources: dict[str, SourceEntry]


class PriceEntry(_Cited):
    """One price in gpu_prices.yaml."""

    provider: str = Field(pattern=r"^[a-z0-9-]+$")
    provider_name: str
    gpu: str
    pricing: Pricing
    usd_per_gpu_hour: float = Field(gt=0)
    num_gpus_per_instance: int | None = Field(gt=0)
    usd_per_instance_hour: float | None = Field(gt=0)
    per_gpu_derived: bool
    instance_type: str | None
    region: str | None
    jurisdiction: list[CountryCode]
    notes: str
    as_of_iso: str | None = Field(pattern=r"^\d{4}(-\d{2}(-\d{2})?)?$")


class UnpricedEntry(_Strict):
    """An offer whose price was not found (kept in the file, never loaded as a price)."""

    provider: str
    gpu: str
    notes: str
    source: SourceIds
    as_of: str


class PricesFile(_Strict):
    """gpu_prices.yaml."""

    schema_: Literal[1] = Field(alias="schema")
    compiled: str
    prices: list[PriceEntry] = Field(min_length=1)
    unpriced: list[UnpricedEntry] = []
    sources: dict[str, SourceEntry]


class PerfEntry(_Cited):
    """A published throughput / TTFT median for one provider endpoint."""

    measured_by: str
    output_tokens_per_s: float | None = Field(gt=0)
    ttft_s: float | None = Field(gt=0)
    blended_usd_per_mtok: float | None = Field(gt=0)
    precision: Precision
    workload: str
    notes: str
    as_of_iso: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")


class ProviderModelEntry(_Cited):
    """One model offering of a provider in providers.yaml."""

    model: str = Field(min_length=1)
    model_id: str | None
    listed_as: str
    status: Literal["active", "deprecated", "withdrawn"]
    input_usd_per_mtok: float | None = Field(ge=0)
    output_usd_per_mtok: float | None = Field(ge=0)
    cached_input_usd_per_mtok: float | None = Field(ge=0)
    precision: Precision
    precision_note: str
    context_tokens: int | None = Field(gt=0)
    max_output_tokens: int | None = Field(gt=0)
    rate_limits: str | None = None
    notes: str
    source_detail: str
    as_of_iso: str | None = Field(pattern=r"^\d{4}(-\d{2}(-\d{2})?)?$")
    perf: list[PerfEntry] = []


class RetentionEvidence(_Strict):
    """The page a retention claim rests on: the provider's own (first-hand) or not, the date
    the page gives (null: undated) and the day it was read."""

    source: str
    first_hand: bool
    page_date: str | None = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    as_of: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")


class ProviderEntry(_Cited):
    """One managed API provider in providers.yaml."""

    id: str = Field(pattern=r"^[a-z0-9-]+$")
    name: str
    base_url: str | None = Field(pattern=r"^https://")
    base_url_text: str = ""
    is_router: bool
    alt_base_urls: list[str]
    jurisdiction: list[CountryCode]
    regions: list[str]
    jurisdiction_text: str
    certifications: dict[CertName, CertStatus]
    certifications_text: str
    retention: Retention
    retention_text: str
    # what the 'zero' claim rests on: required for retention 'zero' (first-hand and dated)
    retention_evidence: RetentionEvidence | None = None
    # countries of the sub-processors the provider names (null: no list published)
    sub_processor_jurisdictions: list[CountryCode] | None = None
    sub_processor_source: list[str] = []
    policy_note: str
    models: list[ProviderModelEntry]
    # The day the policy facts speak for: the oldest of their dates.
    as_of_iso: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")


class ProvidersFile(_Strict):
    """providers.yaml."""

    schema_: Literal[1] = Field(alias="schema")
    compiled: str
    providers: list[ProviderEntry] = Field(min_length=1)
    sources: dict[str, SourceEntry]
