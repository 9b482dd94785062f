"""GPU clouds' published certifications and region countries in the plan's catalog."""

from __future__ import annotations

import pytest

from moerun.catalog.cloud_trust import load_cloud_trust, parse_cloud_trust
from moerun.catalog.plan_catalog import plan_catalog
from moerun.core.market.policy import Policy, allows
from moerun.errors import CatalogError

GOOD = """\
schema: 1
compiled: '2026-12-03'
clouds:
  acme:
    certifications: {iso27001: claimed}
    certifications_text: x
    source: [T1]
    as_of: '2026-10-01'
sources:
  T1: {title: t, ref: r, date: '2026-10-01'}
"""


def test_parse_checks_names_statuses_sources_and_dates() -> None:
    assert parse_cloud_trust(GOOD)["acme"].certifications == {"iso27001": "claimed"}
    for bad in (
        GOOD.replace("iso27001: claimed", "iso9001: claimed"),
        GOOD.replace("iso27001: claimed", "iso27001: sure"),
        GOOD.replace("source: [T1]", "source: [T9]"),
        GOOD.replace("as_of: '2026-10-01'", "as_of: '2026'"),
    ):
        with pytest.raises(CatalogError):
            parse_cloud_trust(bad)


def test_every_cloud_price_carries_its_clouds_published_certifications() -> None:
    trust = load_cloud_trust()
    offers = plan_catalog().clouds
    for offer in offers:
        expected = (
            trust[offer.price.provider].certifications if offer.price.provider in trust else {}
        )
        assert offer.certifications == expected
    assert any(o.certifications for o in offers)


def test_a_claimed_certification_never_satisfies_a_requirement() -> None:
    policy = Policy(required_certifications=("hipaa-baa",))
    coreweave = [o for o in plan_catalog().clouds if o.price.provider == "coreweave"]
    assert coreweave and all(o.certifications.get("hipaa-baa") == "claimed" for o in coreweave)
    assert not any(allows(policy, o.facts) for o in coreweave)


def test_coreweave_north_america_prices_are_in_the_us() -> None:
    coreweave = [o.price for o in plan_catalog().clouds if o.price.provider == "coreweave"]
    assert coreweave and all(p.jurisdiction == ("US",) for p in coreweave)
    assert "M26" in coreweave[0].source
