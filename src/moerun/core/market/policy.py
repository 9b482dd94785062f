"""Data-governance policy: one schema and one matching function for `plan` and the gateway.

A policy is a hard filter. An endpoint passes only when every fact the policy asks about is
known and satisfies it: an unknown jurisdiction, a certification that is only claimed in
marketing, or an unknown retention never satisfies a requirement.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from moerun.core.market.iso3166 import ISO_3166_ALPHA2
from moerun.core.market.providers import CERTIFICATIONS, EU_MEMBER_CODES, Provider
from moerun.errors import UsageError

_ALIASES = {"jurisdictions": "allowed_jurisdictions", "certifications": "required_certifications"}


@dataclass(frozen=True, slots=True)
class Policy:
    """What an endpoint must satisfy to receive a team's traffic (empty fields: no rule)."""

    # ISO 3166-1 alpha-2 codes, plus "EU" for any member state.
    allowed_jurisdictions: tuple[str, ...] = ()
    required_certifications: tuple[str, ...] = ()
    zero_retention: bool = False
    self_hosted_only: bool = False

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Policy:
        """Build and validate a policy from YAML/JSON data; errors name the bad value."""
        data = dict(data or {})
        # The gateway's key policies spell the two lists shorter; both spellings are one schema.
        for short, full in _ALIASES.items():
            if short in data:
                if full in data:
                    raise UsageError(f"policy: give {short!r} or {full!r}, not both")
                data[full] = data.pop(short)
        unknown = set(data) - {
            "allowed_jurisdictions",
            "required_certifications",
            "zero_retention",
            "self_hosted_only",
        }
        if unknown:
            raise UsageError(f"policy: unknown field(s) {', '.join(sorted(unknown))}")
        jurisdictions = tuple(str(j).upper() for j in data.get("allowed_jurisdictions") or ())
        for code in jurisdictions:
            if code != "EU" and code not in ISO_3166_ALPHA2:
                raise UsageError(
                    f"policy: jurisdiction {code!r} is not an ISO 3166 alpha-2 code or 'EU' "
                    "(a country code such as DE, FR, CH or US)"
                )
        certs = tuple(str(c).lower() for c in data.get("required_certifications") or ())
        for cert in certs:
            if cert not in CERTIFICATIONS:
                raise UsageError(
                    f"policy: unknown certification {cert!r}; known: {', '.join(CERTIFICATIONS)}"
                )
        return cls(
            allowed_jurisdictions=jurisdictions,
            required_certifications=certs,
            zero_retention=bool(data.get("zero_retention", False)),
            self_hosted_only=bool(data.get("self_hosted_only", False)),
        )


@dataclass(frozen=True, slots=True)
class EndpointFacts:
    """What is known about where an endpoint processes data and how it is governed."""

    kind: str  # "self-hosted" or "managed"
    # Every country where the endpoint may process data; empty: not known.
    jurisdictions: tuple[str, ...] = ()
    # certification -> "verified" | "claimed" | "unknown"
    certifications: dict[str, str] = field(default_factory=dict)
    retention: str = "unknown"
    # Countries of the sub-processors it names (who else may process the data); None: no list
    # published, so no jurisdiction rule can be satisfied. () for an endpoint that is its own.
    sub_processor_jurisdictions: tuple[str, ...] | None = ()

    @classmethod
    def from_provider(cls, provider: Provider) -> EndpointFacts:
        """The facts of a managed provider from the catalog: its own countries and those of
        the sub-processors it names."""
        return cls(
            kind="managed",
            jurisdictions=provider.jurisdiction,
            certifications=dict(provider.certifications),
            retention=provider.retention,
            sub_processor_jurisdictions=provider.sub_processor_jurisdictions,
        )


def check_jurisdiction(code: str) -> str:
    """The code upper-cased if it is an ISO 3166 alpha-2 code or "EU"; UsageError otherwise."""
    code = code.upper()
    if code != "EU" and code not in ISO_3166_ALPHA2:
        raise UsageError(
            f"jurisdiction {code!r} is not an ISO 3166 alpha-2 code or 'EU' "
            "(a country code such as DE, FR, CH or US)"
        )
    return code


def check_certification(name: str) -> str:
    """The certification lower-cased if it is in the fixed list; UsageError otherwise."""
    name = name.lower()
    if name not in CERTIFICATIONS:
        raise UsageError(f"unknown certification {name!r}; known: {', '.join(CERTIFICATIONS)}")
    return name


def jurisdiction_allowed(code: str, allowed: tuple[str, ...]) -> bool:
    """Whether one country code is inside the allowed set ("EU" covers member states)."""
    return code in allowed or ("EU" in allowed and code in EU_MEMBER_CODES)


def policy_violations(policy: Policy, facts: EndpointFacts) -> tuple[str, ...]:
    """Every reason the endpoint fails the policy; empty when it passes."""
    reasons: list[str] = []
    if policy.self_hosted_only and facts.kind != "self-hosted":
        reasons.append("policy allows self-hosted endpoints only")
    if policy.allowed_jurisdictions:
        allowed = policy.allowed_jurisdictions
        subs = facts.sub_processor_jurisdictions
        where = tuple(dict.fromkeys((*facts.jurisdictions, *(subs or ()))))
        outside = [c for c in where if not jurisdiction_allowed(c, allowed)]
        if not facts.jurisdictions:
            reasons.append("jurisdiction unknown, so it cannot satisfy " + "/".join(allowed))
        elif outside:
            reasons.append(f"processes data in {', '.join(outside)}, outside {'/'.join(allowed)}")
        elif subs is None:
            reasons.append(
                "no sub-processor list published, so where else data goes is unknown and "
                "cannot satisfy " + "/".join(allowed)
            )
    for cert in policy.required_certifications:
        status = facts.certifications.get(cert, "unknown")
        if status != "verified":
            reasons.append(f"{cert} is {status}, not verified")
    if policy.zero_retention and facts.retention != "zero":
        reasons.append(f"retention is {facts.retention}, zero retention required")
    return tuple(reasons)


def allows(policy: Policy, facts: EndpointFacts) -> bool:
    """Whether the endpoint passes the policy."""
    return not policy_violations(policy, facts)
