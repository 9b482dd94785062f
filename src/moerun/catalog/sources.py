"""Citations behind the catalog: every entry's source ids resolve to a Source here."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from moerun.catalog.files import load_yaml, read_package_file
from moerun.catalog.gpus import GPUS_FILE
from moerun.catalog.prices import PRICES_FILE
from moerun.catalog.providers import PROVIDERS_FILE
from moerun.catalog.schema import SourceEntry
from moerun.errors import CatalogError

CATALOG_FILES = (GPUS_FILE, PRICES_FILE, PROVIDERS_FILE)


@dataclass(frozen=True, slots=True)
class Source:
    """One cited source: id, what it is, URL or repository path, and its date as found."""

    id: str
    title: str
    ref: str
    date: str


@functools.cache
def _cached_sources() -> dict[str, Source]:
    merged: dict[str, Source] = {}
    for filename in CATALOG_FILES:
        raw = load_yaml(read_package_file(filename))["sources"]
        for sid, fields in raw.items():
            entry = SourceEntry.model_validate(fields)
            source = Source(id=sid, title=entry.title, ref=entry.ref, date=entry.date)
            if merged.setdefault(sid, source) != source:
                raise CatalogError(
                    f"{filename}: sources.{sid}: differs from its definition elsewhere"
                )
    return merged


def load_sources() -> dict[str, Source]:
    """Every source cited by the packaged catalog files, keyed by id (S#, M#)."""
    return dict(_cached_sources())


def cite(source_ids: tuple[str, ...]) -> list[str]:
    """Human-readable citations ("S57 <url>") for a value's source ids."""
    sources = _cached_sources()
    return [f"{sid} {sources[sid].ref}" if sid in sources else sid for sid in source_ids]
