"""`--prices FILE`: negotiated or reserved rates that replace (or add to) catalog prices.

The file is YAML:

    gpu_prices:                      # per GPU-hour
      - {provider: crusoe, gpu: h200_sxm, usd_per_gpu_hour: 3.10, note: negotiated}
      - {provider: onprem, gpu: h100_sxm, usd_per_gpu_hour: 1.9, pricing: reserved,
         jurisdiction: [DE], certifications: {iso27001: verified}, billing_increment_s: 3600}
    api_prices:                      # per million tokens
      - {provider: deepinfra, model: GLM-5.1, input_usd_per_mtok: 0.9, output_usd_per_mtok: 3.0,
         cached_input_usd_per_mtok: 0.18}

A GPU entry replaces every catalog price of the same provider and GPU (and pricing kind and
region, when given); with no match it is added as a new offer. An API entry replaces the token
prices of the provider's offerings of that model (or of that model_id). Every replacement is
listed in the report.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from moerun.catalog.files import field_path, load_yaml
from moerun.core.market.offers import CloudOffer, normalize_model_name
from moerun.core.market.pricing import PRICING_KINDS, GpuPrice
from moerun.core.market.providers import CERT_STATUSES, CERTIFICATIONS, Provider
from moerun.errors import UsageError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GpuOverride(_Strict):
    """One GPU price override."""

    provider: str = Field(min_length=1)
    gpu: str = Field(min_length=1)
    usd_per_gpu_hour: float = Field(gt=0)
    pricing: str | None = None
    region: str | None = None
    jurisdiction: list[str] | None = None
    certifications: dict[str, str] = {}
    billing_increment_s: int | None = Field(default=None, gt=0)
    num_gpus_per_instance: int | None = Field(default=None, gt=0)
    note: str = ""


class ApiOverride(_Strict):
    """One API token-price override."""

    provider: str = Field(min_length=1)
    model: str | None = None
    model_id: str | None = None
    input_usd_per_mtok: float = Field(ge=0)
    output_usd_per_mtok: float = Field(ge=0)
    cached_input_usd_per_mtok: float | None = Field(default=None, ge=0)


class OverridesFile(_Strict):
    """The whole --prices file."""

    gpu_prices: list[GpuOverride] = []
    api_prices: list[ApiOverride] = []


@dataclass(frozen=True, slots=True)
class Overrides:
    """Parsed overrides, ready to apply."""

    gpu: tuple[GpuOverride, ...]
    api: tuple[ApiOverride, ...]
    where: str


def read_overrides(path: Path) -> Overrides:
    """Read and validate a --prices file; UsageError names the file and field."""
    try:
        raw = load_yaml(path.read_text("utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read --prices file {path}: {exc.strerror or exc}") from exc
    except Exception as exc:  # yaml.YAMLError and decoding errors
        raise UsageError(f"--prices file {path} is not valid YAML: {exc}") from exc
    try:
        data = OverridesFile.model_validate(raw or {})
    except ValidationError as exc:
        err = exc.errors()[0]
        raise UsageError(f"{path}: {field_path(err['loc'])}: {err['msg'].lower()}") from exc
    for i, g in enumerate(data.gpu_prices):
        _check_gpu_override(g, f"{path}: gpu_prices[{i}]")
    for i, a in enumerate(data.api_prices):
        if (a.model is None) == (a.model_id is None):
            raise UsageError(f"{path}: api_prices[{i}]: give model or model_id (one of them)")
    return Overrides(tuple(data.gpu_prices), tuple(data.api_prices), str(path))


def _check_gpu_override(g: GpuOverride, where: str) -> None:
    if g.pricing is not None and g.pricing not in PRICING_KINDS:
        raise UsageError(f"{where}.pricing: {g.pricing!r} is not one of {', '.join(PRICING_KINDS)}")
    for code in g.jurisdiction or []:
        if len(code) != 2 or not code.isupper():
            raise UsageError(f"{where}.jurisdiction: {code!r} is not an ISO 3166 alpha-2 code")
    for cert, status in g.certifications.items():
        if cert not in CERTIFICATIONS or status not in CERT_STATUSES:
            raise UsageError(
                f"{where}.certifications: {cert}: {status} (names: {', '.join(CERTIFICATIONS)}; "
                f"statuses: {', '.join(CERT_STATUSES)})"
            )


def apply_gpu_overrides(
    clouds: list[CloudOffer], overrides: Overrides, gpu_ids: set[str]
) -> tuple[list[CloudOffer], list[str]]:
    """Clouds with the overrides applied, and one line per replaced or added price."""
    out, notes = list(clouds), []
    for g in overrides.gpu:
        if g.gpu not in gpu_ids:
            raise UsageError(
                f"{overrides.where}: gpu_prices: unknown GPU id {g.gpu!r}; "
                f"valid ids: {', '.join(sorted(gpu_ids))}"
            )
        hits = [i for i, c in enumerate(out) if _matches(c.price, g)]
        for i in hits:
            old = out[i]
            out[i] = _overridden(old, g, overrides.where)
            notes.append(
                f"{g.provider} {g.gpu} {old.price.pricing} {old.price.region or ''}".rstrip()
                + f": ${old.price.usd_per_gpu_hour:g} -> ${g.usd_per_gpu_hour:g}/GPU-hour"
                + (f" ({g.note})" if g.note else "")
            )
        if not hits:
            new = GpuPrice(
                provider=g.provider,
                provider_name=g.provider,
                gpu=g.gpu,
                pricing=g.pricing or "on_demand",
                usd_per_gpu_hour=g.usd_per_gpu_hour,
                num_gpus_per_instance=g.num_gpus_per_instance,
                region=g.region,
                jurisdiction=tuple(g.jurisdiction or ()),
                notes=g.note,
                source=("--prices",),
                as_of=overrides.where,
            )
            out.append(_overridden(CloudOffer(new), g, overrides.where))
            notes.append(
                f"{g.provider} {g.gpu} {new.pricing}: added at ${g.usd_per_gpu_hour:g}"
                "/GPU-hour" + (f" ({g.note})" if g.note else "")
            )
    return out, notes


def _matches(p: GpuPrice, g: GpuOverride) -> bool:
    return (
        p.provider == g.provider
        and p.gpu == g.gpu
        and (g.pricing is None or p.pricing == g.pricing)
        and (g.region is None or p.region == g.region)
    )


def _overridden(c: CloudOffer, g: GpuOverride, where: str) -> CloudOffer:
    price = replace(
        c.price,
        usd_per_gpu_hour=g.usd_per_gpu_hour,
        usd_per_instance_hour=None,
        per_gpu_derived=False,
        jurisdiction=tuple(g.jurisdiction) if g.jurisdiction is not None else c.price.jurisdiction,
        num_gpus_per_instance=g.num_gpus_per_instance or c.price.num_gpus_per_instance,
        source=("--prices",),
        as_of=where,
    )
    return CloudOffer(
        price,
        certifications=dict(g.certifications) or dict(c.certifications),
        billing_increment_s=g.billing_increment_s or c.billing_increment_s,
        overridden=True,
    )


def apply_api_overrides(
    providers: dict[str, Provider], overrides: Overrides
) -> tuple[dict[str, Provider], list[str]]:
    """Providers with overridden token prices, and one line per replaced offering."""
    out, notes = dict(providers), []
    for a in overrides.api:
        if a.provider not in out:
            raise UsageError(
                f"{overrides.where}: api_prices: unknown provider {a.provider!r}; "
                f"valid ids: {', '.join(sorted(out))}"
            )
        p = out[a.provider]
        models, hit = [], False
        for m in p.models:
            if (a.model_id is not None and m.model_id == a.model_id) or (
                a.model is not None
                and normalize_model_name(m.model) == normalize_model_name(a.model)
            ):
                hit = True
                notes.append(
                    f"{p.id} {m.model_id or m.listed_as}: ${m.input_usd_per_mtok}/"
                    f"{m.cached_input_usd_per_mtok}/{m.output_usd_per_mtok} -> "
                    f"${a.input_usd_per_mtok}/{a.cached_input_usd_per_mtok}/"
                    f"{a.output_usd_per_mtok} per Mtok in/cached/out"
                )
                m = replace(
                    m,
                    input_usd_per_mtok=a.input_usd_per_mtok,
                    output_usd_per_mtok=a.output_usd_per_mtok,
                    cached_input_usd_per_mtok=a.cached_input_usd_per_mtok,
                    source=("--prices",),
                    as_of=overrides.where,
                )
            models.append(m)
        if not hit:
            raise UsageError(
                f"{overrides.where}: api_prices: {a.provider} does not list {a.model_id or a.model}"
            )
        out[a.provider] = replace(p, models=tuple(models))
    return out, notes
