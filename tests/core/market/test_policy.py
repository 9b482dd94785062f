"""The shared policy schema and matching function."""

from __future__ import annotations

import pytest

from moerun.catalog.loader import load_providers
from moerun.core.market.policy import EndpointFacts, Policy, allows, policy_violations
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
