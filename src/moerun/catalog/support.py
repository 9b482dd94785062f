"""Load catalog/data/support.yaml: the support matrix and the platforms' flags."""

from __future__ import annotations

import functools
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from moerun.catalog.files import check_sources, parse_file, read_package_file
from moerun.core.deploy.support import FEATURES, Platform, Source, SupportMatrix, SupportRule
from moerun.errors import CatalogError

SUPPORT_FILE = "support.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceEntry(_Strict):
    """One cited page, with its date."""

    title: str = Field(min_length=1)
    ref: str = Field(min_length=1)
    date: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")


class RuleEntry(_Strict):
    """One verdict as written in YAML."""

    status: Literal["verified", "unverified", "unsupported"]
    sources: list[str] = Field(min_length=1)
    model_types: list[str] = []
    engines: list[str] = []
    gpus: list[str] = []
    weights: list[str] = []
    feature: str | None = None
    reason: str = ""


class PlatformEntry(_Strict):
    """One platform's additions to the engine command."""

    engines: list[str] = Field(min_length=1)
    gpus: list[str] = Field(min_length=1)
    model_types: list[str] = []
    image: str | None = None
    image_note: str = ""
    args: list[str] = []
    env: list[tuple[str, str]] = []
    note: str = Field(min_length=1)
    sources: list[str] = Field(min_length=1)


class SupportFile(_Strict):
    """The whole file."""

    schema_: int = Field(alias="schema")
    compiled: str
    sources: dict[str, SourceEntry]
    amd: list[str] = []  # a YAML anchor's home (the AMD GPU ids), not read otherwise
    rules: list[RuleEntry]
    platforms: list[PlatformEntry] = []


@functools.cache
def load_support() -> SupportMatrix:
    """The packaged support matrix (cached)."""
    data = parse_file(read_package_file(SUPPORT_FILE), SUPPORT_FILE, SupportFile)
    for i, rule in enumerate(data.rules):
        check_sources(SUPPORT_FILE, f"rules[{i}]", rule.sources, data.sources)
        if rule.feature is not None and rule.feature not in FEATURES:
            raise CatalogError(
                f"{SUPPORT_FILE}: rules[{i}].feature: {rule.feature!r} is not one of "
                + ", ".join(FEATURES)
            )
        if rule.status != "verified" and not rule.reason:
            raise CatalogError(f"{SUPPORT_FILE}: rules[{i}]: a {rule.status} rule needs a reason")
    for i, plat in enumerate(data.platforms):
        check_sources(SUPPORT_FILE, f"platforms[{i}]", plat.sources, data.sources)
    return SupportMatrix(
        rules=tuple(
            SupportRule(
                status=r.status,
                sources=tuple(r.sources),
                model_types=tuple(r.model_types),
                engines=tuple(r.engines),
                gpus=tuple(r.gpus),
                weights=tuple(r.weights),
                feature=r.feature,
                reason=r.reason,
            )
            for r in data.rules
        ),
        platforms=tuple(
            Platform(
                engines=tuple(p.engines),
                gpus=tuple(p.gpus),
                model_types=tuple(p.model_types),
                args=tuple(p.args),
                env=tuple((k, v) for k, v in p.env),
                image=p.image,
                image_note=p.image_note,
                note=p.note,
                sources=tuple(p.sources),
            )
            for p in data.platforms
        ),
        sources=tuple(Source(k, s.title, s.ref, s.date) for k, s in data.sources.items()),
    )
