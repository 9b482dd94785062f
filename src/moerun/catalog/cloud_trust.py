"""GPU clouds' published certifications: gpu_cloud_trust.yaml -> CloudTrust per cloud."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

from moerun.catalog.files import check_sources, parse_file, read_package_file
from moerun.catalog.schema import CertName, CertStatus, SourceEntry

TRUST_FILE = "gpu_cloud_trust.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TrustEntry(_Strict):
    """One cloud's certifications as published, with the evidence's date."""

    certifications: dict[CertName, CertStatus]
    certifications_text: str
    source: list[str] = Field(min_length=1)
    as_of: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")


class TrustFile(_Strict):
    """gpu_cloud_trust.yaml."""

    schema_: int = Field(alias="schema")
    compiled: str
    clouds: dict[str, TrustEntry]
    sources: dict[str, SourceEntry]


@dataclass(frozen=True, slots=True)
class CloudTrust:
    """What one GPU cloud publishes about its certifications (every region alike)."""

    provider: str
    certifications: dict[str, str] = field(default_factory=dict)
    text: str = ""
    source: tuple[str, ...] = ()
    as_of: str = ""


def parse_cloud_trust(text: str, filename: str = TRUST_FILE) -> dict[str, CloudTrust]:
    """Validate the file; every cited source id must be defined in it."""
    data = parse_file(text, filename, TrustFile)
    out = {}
    for cid, e in data.clouds.items():
        check_sources(filename, f"clouds.{cid}", e.source, data.sources)
        out[cid] = CloudTrust(
            cid, dict(e.certifications), e.certifications_text, tuple(e.source), e.as_of
        )
    return out


@functools.cache
def load_cloud_trust() -> dict[str, CloudTrust]:
    """Certifications of the GPU clouds the catalog has evidence for, keyed by cloud id."""
    return parse_cloud_trust(read_package_file(TRUST_FILE))
