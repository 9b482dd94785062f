"""Policy facts that hold up: sub-processors count for jurisdiction rules, unknown never passes,
and 'zero retention' stands only on the provider's own dated page."""

from __future__ import annotations

import json

import pytest

from moerun.catalog.files import read_package_file
from moerun.catalog.providers import load_providers, parse_providers
from moerun.cli import main
from moerun.core.market.policy import EndpointFacts, Policy, policy_violations
from moerun.core.market.providers import EU_MEMBER_CODES, Provider
from moerun.errors import CatalogError

EU = Policy(allowed_jurisdictions=("EU",))


def test_named_sub_processors_outside_the_eu_fail_an_eu_rule() -> None:
    # Nebius B.V. (NL) processing in FI, but its sub-processor list names US, IL, GB, RS
    nebius = load_providers()["nebius"]
    assert set(nebius.jurisdiction) <= EU_MEMBER_CODES
    assert {"US", "IL", "GB"} <= set(nebius.sub_processor_jurisdictions or ())
    facts = EndpointFacts.from_provider(nebius)
    assert facts.sub_processor_jurisdictions == nebius.sub_processor_jurisdictions
    reasons = policy_violations(EU, facts)
    assert reasons and reasons[0].startswith("processes data in US, IL, GB")


def test_unknown_sub_processors_never_pass_a_jurisdiction_rule() -> None:
    in_eu = Provider(id="x", name="x", base_url=None, jurisdiction=("DE",))
    assert policy_violations(EU, EndpointFacts.from_provider(in_eu))
    listed = Provider(
        id="x", name="x", base_url=None, jurisdiction=("DE",), sub_processor_jurisdictions=("FR",)
    )
    assert policy_violations(EU, EndpointFacts.from_provider(listed)) == ()


def test_zero_retention_needs_first_hand_dated_evidence() -> None:
    providers = load_providers()
    for pid in ("venice", "zai", "fireworks", "deepinfra"):  # second-hand or undated pages
        assert providers[pid].retention == "unknown", pid
    text = read_package_file("providers.yaml")
    bad = text.replace(
        "  retention: unknown\n  retention_evidence: {source: S83",
        "  retention: zero\n  retention_evidence: {source: S83",
        1,
    )
    assert bad != text
    with pytest.raises(CatalogError, match="retention_evidence"):
        parse_providers(bad)


def test_eu_zero_retention_plan_admits_no_unsupported_provider(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["plan", "--jurisdictions", "EU", "--zero-retention", "--no-simulate", "--json"]
    assert main([*argv, "--no-progress", "--nodes", "1"]) == 0
    data = json.loads(capsys.readouterr().out)
    providers = load_providers()
    for o in data["options"]:
        if o["managed"] is None:
            continue
        p = providers[o["managed"]["provider"]]
        assert p.retention == "zero" and p.sub_processor_jurisdictions is not None
        assert set(p.jurisdiction) | set(p.sub_processor_jurisdictions) <= EU_MEMBER_CODES
    excluded = {e["subject"].split()[0]: e["reason"] for e in data["excluded"]}
    assert "retention" in excluded["venice"] or "jurisdiction" in excluded["venice"]
