"""Managed API providers as values: endpoint, jurisdiction, certifications, per-model prices."""

from __future__ import annotations

from dataclasses import dataclass, field

# Certifications a deployment requirement may ask for.
CERTIFICATIONS = (
    "soc2-type2",
    "soc2-type1",
    "iso27001",
    "iso27701",
    "hipaa-baa",
    "gdpr-dpa",
    "pci-dss",
)
# "verified": seen in an audit report, trust-centre attestation or legal document;
# "claimed": stated in marketing or secondary summaries only; "unknown": not found.
CERT_STATUSES = ("verified", "claimed", "unknown")
# What happens to prompts and outputs by default: not kept, kept briefly, kept, not found.
RETENTION_CLASSES = ("zero", "temporary", "stored", "unknown")
# The 27 EU member states (ISO 3166-1 alpha-2; europa.eu country list, unchanged since HR
# joined 2013-07-01 and GB left 2020-01-31), so a requirement "EU" matches a provider in "FI".
# Catalog data lists countries only; "EU" is matched here.
# fmt: off
EU_MEMBER_CODES = frozenset({
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE",
    "IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE",
})
# fmt: on


@dataclass(frozen=True, slots=True)
class PublishedPerf:
    """A third party's published median throughput / time-to-first-token for one endpoint."""

    measured_by: str
    output_tokens_per_s: float | None = None
    ttft_s: float | None = None
    blended_usd_per_mtok: float | None = None
    precision: str = "unknown"
    workload: str = ""
    notes: str = ""
    source: tuple[str, ...] = ()
    as_of: str = ""
    # The calendar day the figure speaks for (None: the source gives none).
    as_of_iso: str | None = None


@dataclass(frozen=True, slots=True)
class ProviderModel:
    """One model as one provider serves it: id, token prices, limits, published speed."""

    model: str
    model_id: str | None
    listed_as: str
    input_usd_per_mtok: float | None
    output_usd_per_mtok: float | None
    cached_input_usd_per_mtok: float | None = None
    # fp8 | fp4 | bf16 | mixed | upstream (a router) | unknown; precision_note has the detail.
    precision: str = "unknown"
    precision_note: str = ""
    context_tokens: int | None = None
    max_output_tokens: int | None = None
    # active | deprecated | withdrawn (last listed price kept for reference).
    status: str = "active"
    rate_limits: str | None = None
    perf: tuple[PublishedPerf, ...] = ()
    notes: str = ""
    source: tuple[str, ...] = ()
    as_of: str = ""
    as_of_iso: str | None = None

    @property
    def has_price(self) -> bool:
        """Whether both input and output token prices are known."""
        return self.input_usd_per_mtok is not None and self.output_usd_per_mtok is not None

    def usd_for(self, num_input_tokens: int, num_output_tokens: int) -> float | None:
        """Cost of one request at list prices (no caching); None if a price is unknown."""
        if self.input_usd_per_mtok is None or self.output_usd_per_mtok is None:
            return None
        return (
            num_input_tokens * self.input_usd_per_mtok
            + num_output_tokens * self.output_usd_per_mtok
        ) / 1e6


@dataclass(frozen=True, slots=True)
class Provider:
    """A managed inference API: where it is, what it has attested, what it keeps, what it serves."""

    id: str
    name: str
    base_url: str | None
    # ISO 3166-1 alpha-2 codes of the contracting entity / processing location; empty = unknown.
    jurisdiction: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    # Every name in CERTIFICATIONS maps to one of CERT_STATUSES.
    certifications: dict[str, str] = field(default_factory=dict)
    retention: str = "unknown"
    retention_note: str = ""
    # countries of the sub-processors the provider names; None: no list published (unknown)
    sub_processor_jurisdictions: tuple[str, ...] | None = None
    is_router: bool = False
    alt_base_urls: tuple[str, ...] = ()
    models: tuple[ProviderModel, ...] = ()
    notes: str = ""
    source: tuple[str, ...] = ()
    as_of: str = ""
    # The calendar day the policy facts (jurisdiction, certifications, retention) speak for:
    # the oldest of their dates (None: some have none).
    as_of_iso: str | None = None

    def cert_status(self, certification: str) -> str:
        """Status of one certification: verified, claimed or unknown."""
        assert certification in CERTIFICATIONS, certification
        return self.certifications.get(certification, "unknown")

    def has_certification(self, certification: str) -> bool:
        """Whether the certification is verified; a marketing claim does not count."""
        return self.cert_status(certification) == "verified"

    def in_jurisdiction(self, code: str) -> bool:
        """Whether the provider is known to sit in this country code, or in the EU for "EU"."""
        if code == "EU":
            return any(c in EU_MEMBER_CODES for c in self.jurisdiction)
        return code in self.jurisdiction

    def serving(self, model: str) -> tuple[ProviderModel, ...]:
        """The provider's offerings of one model (e.g. "GLM-5.1"), active ones first."""
        found = [m for m in self.models if m.model == model]
        return tuple(sorted(found, key=lambda m: m.status != "active"))
