"""Plan warnings for facts older than 90 days (the day comes in; core reads no clock)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace

import pytest

from moerun.catalog.plan_catalog import plan_catalog
from moerun.cli import main
from moerun.core.market.offers import CloudOffer
from moerun.core.market.policy import Policy
from moerun.core.plan.freshness import DatedFact, stale_facts, summary_lines, used_facts
from tests.fixtures.plan import make_catalog, run_plan


def test_ninety_days_is_fresh_ninety_one_is_stale() -> None:
    f = DatedFact("GPU price", "x", "2026-01-01", ("S1",))
    # 2026-04-01 is 31 + 28 + 31 = 90 days after 2026-01-01.
    assert stale_facts([f], dt.date(2026, 4, 1)) == []
    (s,) = stale_facts([f], dt.date(2026, 4, 2))
    assert s.age_days == 91
    assert s.message == "GPU price of x is from 2026-01-01, 91 days old [S1]"


def test_undated_facts_are_always_reported_and_sorted_after_by_age() -> None:
    facts = [
        DatedFact("API price", "a", "2026-06-01"),
        DatedFact("API price", "b", None),
        DatedFact("API price", "c", "2026-03-01"),
        DatedFact("API price", "d", "2026"),  # a year is not a day
    ]
    stale = stale_facts(facts, dt.date(2026, 12, 1))
    assert [s.fact.subject for s in stale] == ["b", "d", "c", "a"]
    assert [s.age_days for s in stale] == [None, None, 275, 183]
    (line,) = summary_lines(stale)
    assert line.startswith(
        "API price: 2 older than 90 days (oldest 2026-03-01, 275 days); 2 undated"
    )


def _single_cloud_catalog(as_of_iso: str) -> tuple[CloudOffer, ...]:
    base = next(
        c for c in plan_catalog().clouds if c.price.gpu == "h200_sxm" and c.price.provider == "aws"
    )
    return (CloudOffer(replace(base.price, as_of_iso=as_of_iso)),)


def test_the_plan_uses_the_price_of_the_cloud_it_recommends() -> None:
    catalog = make_catalog(clouds=_single_cloud_catalog("2026-08-06"), providers={})
    r = run_plan(catalog=catalog, gpus=("h200_sxm",))
    assert r.options
    facts = used_facts(r)
    assert {f.kind for f in facts} == {"GPU price"}
    assert all(f.as_of_iso == "2026-08-06" for f in facts)
    # 2026-08-06 + 90 days = 2026-11-04.
    assert stale_facts(facts, dt.date(2026, 11, 4)) == []
    assert {s.age_days for s in stale_facts(facts, dt.date(2026, 11, 5))} == {91}


def test_policy_facts_count_only_when_the_plan_applies_a_policy() -> None:
    plain = run_plan()
    assert "provider policy" not in {f.kind for f in used_facts(plain)}
    governed = run_plan(policy=Policy(allowed_jurisdictions=("US",)))
    kinds = {f.kind for f in used_facts(governed)}
    if any(o.managed for o in governed.options):
        assert "provider policy" in kinds


def test_cli_warns_on_stderr_and_in_json(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["plan", "--no-progress", "--json", "--gpus", "h200_sxm", "--no-simulate"]
    assert main([*args, "--today", "2027-06-01"]) == 0
    out = capsys.readouterr()
    data = json.loads(out.out)
    assert data["warnings"] and all("days old" in w or "no date" in w for w in data["warnings"])
    assert "moerun: warning: GPU price:" in out.err
    assert main(["plan", "--today", "bad-day"]) == 2
    assert "not a date; give YYYY-MM-DD" in capsys.readouterr().err
