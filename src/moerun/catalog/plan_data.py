"""The plan's catalog files: workload presets, GPU cloud billing, weight-format quality notes.

Each file is validated with pydantic on load; a bad entry raises CatalogError naming the file
and field, as every catalog loader does.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from moerun.catalog.files import check_sources, parse_file, read_package_file
from moerun.catalog.schema import SourceEntry
from moerun.core.load.metrics import Slo
from moerun.core.load.workload import AgenticShape, LengthDist
from moerun.core.plan.demand import DailyProfile, WorkloadPreset
from moerun.errors import CatalogError, UsageError

PRESETS_FILE = "workload_presets.yaml"
CLOUDS_FILE = "gpu_clouds.yaml"
QUALITY_FILE = "weight_quality.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LengthEntry(_Strict):
    """A length distribution as written in YAML."""

    kind: Literal["fixed", "uniform", "lognormal"] = "fixed"
    mean: int = Field(ge=0)
    low: int | None = None
    high: int | None = None
    sigma: float = Field(default=0.5, gt=0)
    minimum: int = Field(default=1, ge=0)
    maximum: int | None = None

    def to_dist(self) -> LengthDist:
        """The core value."""
        return LengthDist(
            self.kind, self.mean, self.low, self.high, self.sigma, self.minimum, self.maximum
        )


class SloEntry(_Strict):
    """Default p99 bounds of a preset."""

    ttft_p99_ms: float = Field(gt=0)
    tpot_p99_ms: float = Field(gt=0)


class PresetEntry(_Strict):
    """One workload preset."""

    description: str
    kind: Literal["single-turn", "agentic"]
    input: LengthEntry | None = None
    output: LengthEntry
    shared_prefix_tokens: int = Field(default=0, ge=0)
    num_prefixes: int = Field(default=1, ge=1)
    system_tokens: int = Field(default=0, ge=0)
    num_system_prompts: int = Field(default=1, ge=1)
    turns: LengthEntry | None = None
    first_input: LengthEntry | None = None
    tool_output: LengthEntry | None = None
    think_s: float = Field(default=0.0, ge=0)
    max_context: int = Field(gt=0)
    max_output_tokens: int = Field(gt=0)
    slo: SloEntry
    requests_per_day: float = Field(gt=0)
    hourly_profile: list[float] = Field(min_length=24, max_length=24)
    notes: list[str] = []


class Assumptions(_Strict):
    """Stated planning assumptions."""

    hours_per_month: float = Field(gt=0)
    api_cache_hit_fraction: float = Field(ge=0, le=1)


class PresetsFile(_Strict):
    """workload_presets.yaml."""

    schema_: int = Field(alias="schema")
    assumptions: Assumptions
    presets: dict[str, PresetEntry]


class CloudEntry(_Strict):
    """Billing of one GPU cloud."""

    billing_increment_s: int | None = Field(default=None, gt=0)
    minimum_charge_s: int | None = Field(default=None, ge=0)
    source: list[str] = Field(min_length=1)
    as_of: str
    notes: str = ""


class CloudsFile(_Strict):
    """gpu_clouds.yaml."""

    schema_: int = Field(alias="schema")
    compiled: str
    clouds: dict[str, CloudEntry]
    sources: dict[str, SourceEntry]


class QualityEntry(_Strict):
    """Quality note of one weight format."""

    bits: int
    note: str
    source: list[str] = Field(min_length=1)
    as_of: str
    as_of_iso: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")


class QualityFile(_Strict):
    """weight_quality.yaml."""

    schema_: int = Field(alias="schema")
    compiled: str
    formats: dict[str, QualityEntry]
    sources: dict[str, SourceEntry]


@dataclass(frozen=True, slots=True)
class CloudBilling:
    """How one GPU cloud bills on-demand capacity."""

    provider: str
    billing_increment_s: int | None
    minimum_charge_s: int | None
    source: tuple[str, ...]
    as_of: str
    notes: str


@dataclass(frozen=True, slots=True)
class WeightQuality:
    """What a weight format costs in quality, as far as the sources say."""

    format: str
    bits: int
    note: str
    source: tuple[str, ...]
    as_of: str


def parse_presets(
    text: str, filename: str = PRESETS_FILE
) -> tuple[dict[str, WorkloadPreset], Assumptions]:
    """Validate the presets file and build WorkloadPreset values keyed by name."""
    data = parse_file(text, filename, PresetsFile)
    out = {}
    for name, e in data.presets.items():
        try:
            out[name] = preset_from_entry(name, e)
        except ValueError as exc:
            raise CatalogError(f"{filename}: presets.{name}: {exc}") from exc
    return out, data.assumptions


def preset_from_entry(name: str, e: PresetEntry) -> WorkloadPreset:
    """One preset; ValueError names an inconsistent field."""
    agentic = None
    if e.kind == "agentic":
        if e.turns is None or e.first_input is None or e.tool_output is None:
            raise ValueError("an agentic preset needs turns, first_input and tool_output")
        agentic = AgenticShape(
            num_turns=e.turns.to_dist(),
            system_tokens=e.system_tokens,
            num_system_prompts=e.num_system_prompts,
            first_input=e.first_input.to_dist(),
            tool_output=e.tool_output.to_dist(),
            output=e.output.to_dist(),
            think_s=e.think_s,
        )
    return WorkloadPreset(
        name=name,
        description=e.description,
        kind=e.kind,
        output=e.output.to_dist(),
        max_context=e.max_context,
        max_output_tokens=e.max_output_tokens,
        slo=Slo(ttft_ms=e.slo.ttft_p99_ms, tpot_ms=e.slo.tpot_p99_ms),
        requests_per_day=e.requests_per_day,
        profile=DailyProfile.from_values(e.hourly_profile),
        input=e.input.to_dist() if e.input else None,
        shared_prefix_tokens=e.shared_prefix_tokens,
        num_prefixes=e.num_prefixes,
        agentic=agentic,
        notes=tuple(e.notes),
    )


def preset_fields(p: WorkloadPreset) -> dict[str, Any]:
    """A preset back as the YAML fields it came from (so a config can override some)."""

    def dist(d: Any) -> dict[str, Any]:
        return {
            "kind": d.kind,
            "mean": d.mean,
            "low": d.low,
            "high": d.high,
            "sigma": d.sigma,
            "minimum": d.minimum,
            "maximum": d.maximum,
        }

    out: dict[str, Any] = {
        "description": p.description,
        "kind": p.kind,
        "output": dist(p.output),
        "max_context": p.max_context,
        "max_output_tokens": p.max_output_tokens,
        "slo": {"ttft_p99_ms": p.slo.ttft_ms, "tpot_p99_ms": p.slo.tpot_ms},
        "requests_per_day": p.requests_per_day,
        "hourly_profile": list(p.profile.hourly),
        "notes": list(p.notes),
    }
    if p.agentic is not None:
        a = p.agentic
        out |= {
            "system_tokens": a.system_tokens,
            "num_system_prompts": a.num_system_prompts,
            "turns": dist(a.num_turns),
            "first_input": dist(a.first_input),
            "tool_output": dist(a.tool_output),
            "think_s": a.think_s,
        }
    else:
        assert p.input is not None
        out |= {
            "input": dist(p.input),
            "shared_prefix_tokens": p.shared_prefix_tokens,
            "num_prefixes": p.num_prefixes,
        }
    return out


@functools.cache
def _presets() -> tuple[dict[str, WorkloadPreset], Assumptions]:
    return parse_presets(read_package_file(PRESETS_FILE))


def load_presets() -> dict[str, WorkloadPreset]:
    """Every workload preset in the packaged catalog, keyed by name."""
    return dict(_presets()[0])


def get_preset(name: str) -> WorkloadPreset:
    """One preset by name; an unknown name raises UsageError listing the valid ones."""
    presets = _presets()[0]
    if name not in presets:
        raise UsageError(f"unknown workload preset {name!r}; choose one of {', '.join(presets)}")
    return presets[name]


def plan_assumptions() -> Assumptions:
    """Hours per month and the API cache-hit assumption."""
    return _presets()[1]


@functools.cache
def load_cloud_billing() -> dict[str, CloudBilling]:
    """Billing increments of the GPU clouds the catalog knows them for."""
    data = parse_file(read_package_file(CLOUDS_FILE), CLOUDS_FILE, CloudsFile)
    out = {}
    for cid, e in data.clouds.items():
        check_sources(CLOUDS_FILE, f"clouds.{cid}", e.source, data.sources)
        out[cid] = CloudBilling(
            cid, e.billing_increment_s, e.minimum_charge_s, tuple(e.source), e.as_of, e.notes
        )
    return out


@functools.cache
def load_weight_quality() -> dict[str, WeightQuality]:
    """Quality notes per weight format."""
    data = parse_file(read_package_file(QUALITY_FILE), QUALITY_FILE, QualityFile)
    out = {}
    for fmt, e in data.formats.items():
        check_sources(QUALITY_FILE, f"formats.{fmt}", e.source, data.sources)
        out[fmt] = WeightQuality(fmt, e.bits, e.note, tuple(e.source), e.as_of)
    return out


@functools.cache
def plan_sources() -> dict[str, SourceEntry]:
    """Sources cited by the plan's own catalog files."""
    merged: dict[str, SourceEntry] = {}
    for filename, schema in ((CLOUDS_FILE, CloudsFile), (QUALITY_FILE, QualityFile)):
        data: Any = parse_file(read_package_file(filename), filename, schema)
        merged.update(data.sources)
    return merged
