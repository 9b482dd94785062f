"""The shared policy schema and matching function."""

from __future__ import annotations

import pytest

from moerun.catalog.loader import load_providers
from moerun.core.market.policy import (
    EndpointFacts,
    Policy,
    allows,
    check_certification,
    check_jurisdiction,
    jurisdiction_allowed,
    policy_violations,
)
from moerun.errors import UsageError

EU_FULL = EndpointFacts(
    kind="managed",
    jurisdictions=("FI",),
    certifications={"soc2-type2": "verified", "iso27001": "claimed"},
    retention="zero",
)


def test_empty_policy_allows_everything() -> None:
    assert allows(Policy(), EndpointFacts(kind="managed"))


def test_eu_matches_member_states_only() -> None:
    eu = Policy.from_dict({"allowed_jurisdictions": ["eu"]})
    assert allows(eu, EU_FULL)
    us = EndpointFacts(kind="managed", jurisdictions=("US",))
    assert "outside EU" in policy_violations(eu, us)[0]
    mixed = EndpointFacts(kind="managed", jurisdictions=("DE", "US"))
    assert not allows(eu, mixed)


def test_unknown_values_never_satisfy() -> None:
    policy = Policy.from_dict(
        {
            "allowed_jurisdictions": ["US"],
            "required_certifications": ["hipaa-baa"],
            "zero_retention": True,
        }
    )
    reasons = policy_violations(policy, EndpointFacts(kind="managed"))
    assert len(reasons) == 3
    assert any("jurisdiction unknown" in r for r in reasons)


def test_claimed_certification_is_not_enough() -> None:
    assert not allows(Policy(required_certifications=("iso27001",)), EU_FULL)
    assert allows(Policy(required_certifications=("soc2-type2",)), EU_FULL)


def test_self_hosted_only() -> None:
    policy = Policy(self_hosted_only=True)
    assert not allows(policy, EU_FULL)
    assert allows(policy, EndpointFacts(kind="self-hosted"))


@pytest.mark.parametrize(
    "data",
    [{"allowed_jurisdictions": ["Europe"]}, {"required_certifications": ["soc3"]}, {"zone": 1}],
)
def test_bad_policy_is_a_usage_error(data: dict[str, object]) -> None:
    with pytest.raises(UsageError):
        Policy.from_dict(data)


def test_catalog_providers_are_filtered_by_verified_facts() -> None:
    providers = load_providers()
    hipaa = Policy(required_certifications=("hipaa-baa",))
    for p in providers.values():
        facts = EndpointFacts.from_provider(p)
        assert allows(hipaa, facts) == p.has_certification("hipaa-baa")


def test_from_dict_defaults_normalise_and_accept_both_spellings() -> None:
    assert Policy.from_dict(None) == Policy() == Policy.from_dict({})
    empty = Policy.from_dict({})
    assert empty.zero_retention is False and empty.self_hosted_only is False
    short = Policy.from_dict({"jurisdictions": ["de", "eu"], "certifications": ["SOC2-TYPE2"]})
    long = Policy.from_dict(
        {"allowed_jurisdictions": ["DE", "EU"], "required_certifications": ["soc2-type2"]}
    )
    assert short == long
    assert long.allowed_jurisdictions == ("DE", "EU")
    assert long.required_certifications == ("soc2-type2",)
    flags = Policy.from_dict({"zero_retention": True, "self_hosted_only": True})
    assert flags.zero_retention is True and flags.self_hosted_only is True
    with pytest.raises(UsageError, match="not both"):
        Policy.from_dict({"jurisdictions": ["DE"], "allowed_jurisdictions": ["FR"]})
    with pytest.raises(UsageError, match="not both"):
        Policy.from_dict({"certifications": ["iso27001"], "required_certifications": []})
    with pytest.raises(UsageError, match=r"unknown field\(s\) a, zone"):
        Policy.from_dict({"zone": 1, "a": 2})


def test_every_violation_is_named_exactly() -> None:
    policy = Policy(
        allowed_jurisdictions=("EU", "CH"),
        required_certifications=("soc2-type2", "hipaa-baa", "iso27001"),
        zero_retention=True,
        self_hosted_only=True,
    )
    facts = EndpointFacts(
        kind="managed",
        jurisdictions=("DE", "US", "CH", "GB"),
        certifications={"soc2-type2": "verified", "iso27001": "claimed"},
        retention="30d",
    )
    assert policy_violations(policy, facts) == (
        "policy allows self-hosted endpoints only",
        "processes data in US, GB, outside EU/CH",
        "hipaa-baa is unknown, not verified",
        "iso27001 is claimed, not verified",
        "retention is 30d, zero retention required",
    )
    unknown = EndpointFacts(kind="self-hosted")
    assert policy_violations(Policy(allowed_jurisdictions=("EU", "CH")), unknown) == (
        "jurisdiction unknown, so it cannot satisfy EU/CH",
    )
    passing = EndpointFacts(
        kind="self-hosted",
        jurisdictions=("FR", "CH"),
        certifications={c: "verified" for c in policy.required_certifications},
        retention="zero",
    )
    assert policy_violations(policy, passing) == ()


def test_endpoint_facts_of_a_provider_copy_its_catalog_facts() -> None:
    for p in load_providers().values():
        facts = EndpointFacts.from_provider(p)
        assert facts.kind == "managed"
        assert facts.jurisdictions == p.jurisdiction
        assert facts.certifications == dict(p.certifications)
        assert facts.retention == p.retention


@pytest.mark.parametrize(
    ("code", "ok"), [("de", "DE"), ("eu", "EU"), ("Us", "US"), ("EUR", None), ("D", None)]
)
def test_check_jurisdiction(code: str, ok: str | None) -> None:
    if ok is None:
        with pytest.raises(UsageError, match="not an ISO 3166 alpha-2 code"):
            check_jurisdiction(code)
    else:
        assert check_jurisdiction(code) == ok


def test_check_certification() -> None:
    assert check_certification("HIPAA-BAA") == "hipaa-baa"
    with pytest.raises(UsageError, match=r"unknown certification 'soc3'; known: "):
        check_certification("soc3")


def test_jurisdiction_allowed_eu_covers_members_only() -> None:
    assert jurisdiction_allowed("FR", ("EU",)) and jurisdiction_allowed("FR", ("FR",))
    assert not jurisdiction_allowed("CH", ("EU",))  # Switzerland is not an EU member
    assert not jurisdiction_allowed("GB", ("EU", "DE"))
    assert not jurisdiction_allowed("FR", ())


# The one-line errors tell the user what would be accepted: the known certifications in full,
# comma-separated, and example country codes in capitals (the form the catalog writes).
KNOWN_CERTS = "soc2-type2, soc2-type1, iso27001, iso27701, hipaa-baa, gdpr-dpa, pci-dss"
CODE_HINT = "(a country code such as DE, FR, CH or US)"


def test_bad_certification_errors_list_every_known_one() -> None:
    with pytest.raises(UsageError) as direct:
        check_certification("soc3")
    assert str(direct.value) == f"unknown certification 'soc3'; known: {KNOWN_CERTS}"
    with pytest.raises(UsageError) as in_policy:
        Policy.from_dict({"required_certifications": ["SOC3"]})
    assert str(in_policy.value) == f"policy: unknown certification 'soc3'; known: {KNOWN_CERTS}"


def test_bad_jurisdiction_errors_name_the_code_and_show_valid_ones() -> None:
    with pytest.raises(UsageError) as direct:
        check_jurisdiction("eur")
    assert str(direct.value) == (
        f"jurisdiction 'EUR' is not an ISO 3166 alpha-2 code or 'EU' {CODE_HINT}"
    )
    with pytest.raises(UsageError) as in_policy:
        Policy.from_dict({"allowed_jurisdictions": ["DE", "Europe"]})
    assert str(in_policy.value) == (
        f"policy: jurisdiction 'EUROPE' is not an ISO 3166 alpha-2 code or 'EU' {CODE_HINT}"
    )


def test_unpublished_sub_processors_are_named_as_the_reason() -> None:
    # In the EU itself, but no sub-processor list: where else the data goes is unknown.
    facts = EndpointFacts(kind="managed", jurisdictions=("DE",), sub_processor_jurisdictions=None)
    assert policy_violations(Policy(allowed_jurisdictions=("EU", "CH")), facts) == (
        "no sub-processor list published, so where else data goes is unknown and "
        "cannot satisfy EU/CH",
    )
