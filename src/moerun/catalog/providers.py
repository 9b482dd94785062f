"""Managed API provider catalog: providers.yaml -> Provider values."""

from __future__ import annotations

import functools
from collections.abc import Mapping

from moerun.catalog.files import check_sources, parse_file, read_package_file
from moerun.catalog.schema import PerfEntry, ProviderEntry, ProviderModelEntry, ProvidersFile
from moerun.core.market.providers import Provider, ProviderModel, PublishedPerf
from moerun.errors import CatalogError

PROVIDERS_FILE = "providers.yaml"


def parse_providers(text: str, filename: str = PROVIDERS_FILE) -> dict[str, Provider]:
    """Validate providers.yaml text and build Provider values keyed by id."""
    data = parse_file(text, filename, ProvidersFile)
    providers: dict[str, Provider] = {}
    for i, entry in enumerate(data.providers):
        where = f"providers[{i}]"
        if entry.id in providers:
            raise CatalogError(f"{filename}: {where}.id: duplicate provider id {entry.id!r}")
        check_sources(filename, where, entry.source, data.sources)
        for j, model in enumerate(entry.models):
            check_sources(filename, f"{where}.models[{j}]", model.source, data.sources)
            for k, perf in enumerate(model.perf):
                check_sources(filename, f"{where}.models[{j}].perf[{k}]", perf.source, data.sources)
        check_sources(
            filename, f"{where}.sub_processor_source", entry.sub_processor_source, data.sources
        )
        _check_retention(filename, where, entry, data.sources)
        providers[entry.id] = _to_provider(entry)
    return providers


def _check_retention(
    filename: str, where: str, entry: ProviderEntry, sources: Mapping[str, object]
) -> None:
    """'zero' stands only on the provider's own dated page; anything less is 'unknown'."""
    ev = entry.retention_evidence
    if ev is not None:
        check_sources(filename, f"{where}.retention_evidence", [ev.source], sources)
    if entry.retention == "zero" and (ev is None or not ev.first_hand or ev.page_date is None):
        raise CatalogError(
            f"{filename}: {where}.retention: 'zero' needs retention_evidence from the provider's "
            "own dated page (first_hand: true, page_date); otherwise write 'unknown'"
        )


def _to_provider(entry: ProviderEntry) -> Provider:
    return Provider(
        id=entry.id,
        name=entry.name,
        base_url=entry.base_url,
        jurisdiction=tuple(entry.jurisdiction),
        regions=tuple(entry.regions),
        certifications=dict(entry.certifications),
        retention=entry.retention,
        retention_note=entry.retention_text,
        sub_processor_jurisdictions=None
        if entry.sub_processor_jurisdictions is None
        else tuple(entry.sub_processor_jurisdictions),
        is_router=entry.is_router,
        alt_base_urls=tuple(entry.alt_base_urls),
        models=tuple(_to_model(m) for m in entry.models),
        notes=entry.policy_note,
        source=tuple(entry.source),
        as_of=entry.as_of,
        as_of_iso=entry.as_of_iso,
    )


def _to_model(entry: ProviderModelEntry) -> ProviderModel:
    return ProviderModel(
        model=entry.model,
        model_id=entry.model_id,
        listed_as=entry.listed_as,
        input_usd_per_mtok=entry.input_usd_per_mtok,
        output_usd_per_mtok=entry.output_usd_per_mtok,
        cached_input_usd_per_mtok=entry.cached_input_usd_per_mtok,
        precision=entry.precision,
        precision_note=entry.precision_note,
        context_tokens=entry.context_tokens,
        max_output_tokens=entry.max_output_tokens,
        status=entry.status,
        rate_limits=entry.rate_limits,
        perf=tuple(_to_perf(p) for p in entry.perf),
        notes=entry.notes,
        source=tuple(entry.source),
        as_of=entry.as_of,
        as_of_iso=entry.as_of_iso,
    )


def _to_perf(entry: PerfEntry) -> PublishedPerf:
    return PublishedPerf(
        measured_by=entry.measured_by,
        output_tokens_per_s=entry.output_tokens_per_s,
        ttft_s=entry.ttft_s,
        blended_usd_per_mtok=entry.blended_usd_per_mtok,
        precision=entry.precision,
        workload=entry.workload,
        notes=entry.notes,
        source=tuple(entry.source),
        as_of=entry.as_of,
        as_of_iso=entry.as_of_iso,
    )


@functools.cache
def _cached_providers() -> dict[str, Provider]:
    return parse_providers(read_package_file(PROVIDERS_FILE))


def load_providers() -> dict[str, Provider]:
    """All managed API providers in the packaged catalog, keyed by id."""
    return dict(_cached_providers())
