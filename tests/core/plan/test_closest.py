"""`closest` is filled whenever nothing passes and something was excluded."""

from __future__ import annotations

from dataclasses import replace

from moerun.catalog.plan_catalog import plan_catalog
from moerun.core.market.offers import CloudOffer
from moerun.core.market.policy import Policy
from tests.fixtures.plan import make_catalog, run_plan


def _one_h200(region: str, country: str) -> CloudOffer:
    base = next(c for c in plan_catalog().clouds if c.price.gpu == "h200_sxm")
    price = replace(base.price, provider="testcloud", region=region, jurisdiction=(country,))
    return CloudOffer(price)


def test_a_certification_nothing_holds_names_the_endpoint_that_got_furthest() -> None:
    # Frankfurt passes the EU rule and fails only the certification; Virginia fails the EU rule.
    catalog = make_catalog(
        clouds=(_one_h200("us-east", "US"), _one_h200("frankfurt", "DE")), providers={}
    )
    policy = Policy(allowed_jurisdictions=("EU",), required_certifications=("hipaa-baa",))
    r = run_plan(catalog=catalog, policy=policy, gpus=("h200_sxm",))
    assert not r.options
    assert r.closest is not None
    assert "frankfurt" in r.closest and "hipaa-baa" in r.closest
    assert "us-east" not in r.closest


def test_the_packaged_catalog_names_a_closest_for_every_policy_that_empties_it() -> None:
    emptied = 0
    for policy in (
        Policy(required_certifications=("iso27701",), allowed_jurisdictions=("JP",)),
        Policy(required_certifications=("hipaa-baa",), allowed_jurisdictions=("SG",)),
    ):
        r = run_plan(policy=policy)
        if not r.options:
            assert r.exclusions
            assert r.closest is not None, policy
            emptied += 1
    assert emptied  # at least one of them leaves nothing, or the test proves nothing
