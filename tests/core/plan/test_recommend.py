"""The plan's choices: policy as a hard filter, the constraint that emptied the list,
ranking, hybrids and break-even."""

from __future__ import annotations

from dataclasses import replace

import pytest

from moerun.core.load.metrics import Slo
from moerun.core.market.policy import Policy
from moerun.core.market.providers import EU_MEMBER_CODES
from moerun.core.plan.demand import DailyProfile, Volume
from moerun.core.plan.planner import PlanResult
from moerun.core.plan.recommend import self_hosted_usd_per_day
from moerun.errors import UsageError
from tests.fixtures.plan import make_catalog, make_request, run_plan


def _jurisdictions(r: PlanResult) -> set[str]:
    codes: set[str] = set()
    for o in r.options:
        if o.self_hosted is not None:
            codes |= set(o.self_hosted.cloud.price.jurisdiction)
        if o.managed is not None:
            codes |= set(o.managed.provider.jurisdiction)
    return codes


def test_eu_only_never_leaves_the_eu() -> None:
    r = run_plan(policy=Policy(allowed_jurisdictions=("EU",)), gpus=None)
    assert r.options, "AWS eu-north-1 (Stockholm) H200s are in the EU"
    codes = _jurisdictions(r)
    assert codes and codes <= EU_MEMBER_CODES
    assert all(o.kind == "self-hosted" for o in r.options)  # no EU API has a price
    excluded = {e.subject.split()[0] for e in r.exclusions if "jurisdiction" in e.constraint}
    assert {"zai", "deepinfra", "together"} <= excluded


def test_hipaa_keeps_only_verified_entries() -> None:
    r = run_plan(policy=Policy(required_certifications=("hipaa-baa",)))
    # every catalog entry has HIPAA unknown or only claimed: nothing is left
    assert not r.options
    assert r.funnel.emptied_by == "policy: certification hipaa-baa"
    claimed = [e for e in r.exclusions if e.subject.startswith("together")]
    assert claimed and "claimed, not verified" in claimed[0].reason

    catalog = make_catalog()
    verified = dict(catalog.providers)
    baseten = verified["baseten"]
    verified["baseten"] = replace(
        baseten, certifications={**baseten.certifications, "hipaa-baa": "verified"}
    )
    r = run_plan(
        catalog=replace(catalog, providers=verified),
        policy=Policy(required_certifications=("hipaa-baa",)),
    )
    assert r.options and {o.managed.provider.id for o in r.options if o.managed} == {"baseten"}
    assert all(o.kind == "managed" for o in r.options)


def test_self_hosted_only_shows_no_api() -> None:
    r = run_plan(policy=Policy(self_hosted_only=True))
    assert r.options
    assert all(o.kind == "self-hosted" and o.managed is None for o in r.options)
    assert any(e.constraint == "policy: self-hosted only" for e in r.exclusions)


@pytest.mark.parametrize(
    ("overrides", "constraint"),
    [
        ({"policy": Policy(allowed_jurisdictions=("JP",))}, "policy: jurisdiction JP"),
        ({"slo": Slo(ttft_ms=2000, tpot_ms=1)}, "SLO"),
        ({"budget_usd_per_month": 10.0}, "budget"),
        ({"gpu_clouds": (), "providers": ("nobody",)}, "providers named"),
    ],
)
def test_the_constraint_that_emptied_the_list_is_named(
    overrides: dict[str, object], constraint: str
) -> None:
    r = run_plan(**overrides)
    assert not r.options
    assert r.funnel.emptied_by == constraint
    assert r.funnel.stages[-1] == (constraint, 0)


def test_an_impossible_slo_names_the_closest_configuration() -> None:
    r = run_plan(slo=Slo(ttft_ms=2000, tpot_ms=1))
    assert r.closest is not None and "p99 TPOT" in r.closest


@pytest.mark.parametrize(
    "overrides",
    [
        {"policy": Policy(self_hosted_only=True), "gpu_clouds": ()},
        {"policy": Policy(self_hosted_only=True), "providers": ("deepinfra",)},
        {"budget_usd_per_month": -5.0},
        {"pricing": ("bargain",)},
    ],
)
def test_contradictory_or_bad_requests_are_usage_errors(overrides: dict[str, object]) -> None:
    with pytest.raises(UsageError):
        make_request(**overrides).check()


def test_options_are_ranked_by_cost_and_notes_say_where_numbers_come_from() -> None:
    r = run_plan()
    costs = [o.usd_per_month for o in r.options]
    assert costs == sorted(costs)
    kinds = {o.kind for o in r.options}
    assert {"self-hosted", "managed"} <= kinds
    managed = next(o for o in r.options if o.kind == "managed")
    assert any("p99 unverified" in n and "moerun bench" in n for n in managed.notes)
    own = next(o for o in r.options if o.kind == "self-hosted")
    assert any("calibration" in n for n in own.notes)
    assert any("[S" in n and "as of" in n for n in own.notes)  # price source and date


def test_every_self_hosted_note_gives_its_band_or_says_it_has_none() -> None:
    r = run_plan(allow_unverified=True)
    own = [o for o in r.options if o.self_hosted is not None and o.kind == "self-hosted"]
    assert own
    for o in own:
        assert o.self_hosted is not None
        perf = o.self_hosted.perf
        note = next(n for n in o.notes if "calibration" in n)
        p99 = perf.error_band_pct.get("tpot_p99_ms")
        median = perf.error_band_pct.get("tpot_p50_ms")
        if p99 is not None:
            assert f"p99 TPOT ±{p99:.0f}%" in note, note
        elif median is not None:
            assert f"median TPOT ±{median:.0f}%" in note, note
        if not perf.error_band_pct:
            assert "its error was never measured" in note and "typical error" not in note
        else:
            assert "typical error" in note and "never measured" not in note


def test_output_caps_rule_out_long_agentic_generations() -> None:
    r = run_plan("agentic-coding")
    capped = {e.subject.split()[0]: e.reason for e in r.exclusions if "caps" in e.constraint}
    assert "deepinfra" in capped and "16,384" in capped["deepinfra"]
    assert all(o.managed is None or o.managed.provider.id != "deepinfra" for o in r.options)


def test_hybrid_beats_its_own_fleet_on_a_peaky_day() -> None:
    peaky = DailyProfile.from_values([0.2] * 20 + [5.0] * 4)
    r = run_plan(volume=Volume(2_000_000, peaky))
    hybrids = [o for o in r.options if o.kind == "hybrid"]
    assert hybrids
    h = hybrids[0]
    assert h.self_hosted is not None and h.managed is not None and h.hybrid is not None
    fleet = next(
        o
        for o in r.options
        if o.kind == "self-hosted"
        and o.self_hosted
        and o.self_hosted.label == h.self_hosted.label
        and o.self_hosted.cloud == h.self_hosted.cloud
    )
    assert h.usd_per_month < fleet.usd_per_month
    assert 0 < h.hybrid.overflow_share < 1


def test_break_even_is_where_the_costs_cross() -> None:
    r = run_plan("agentic-coding")
    assert r.break_even_between is not None
    own, api = r.break_even_between
    v = r.break_even_requests_per_day
    assert own.self_hosted is not None and api.managed is not None
    if v is None:
        # no crossing: even at 1000x the volume the fleet costs more per request than the API
        top = r.request.volume.requests_per_day * 1000
        assert self_hosted_usd_per_day(own.self_hosted, r.request.volume, top) > (
            api.managed.usd_per_request * top
        )
        return
    fleet = self_hosted_usd_per_day(own.self_hosted, r.request.volume, v)
    assert fleet <= api.managed.usd_per_request * v * 1.001
    below = v * 0.99
    assert self_hosted_usd_per_day(own.self_hosted, r.request.volume, below) > (
        api.managed.usd_per_request * below
    )


def test_the_break_even_band_is_the_crossing_at_either_end_of_the_throughput_error() -> None:
    r = run_plan("agentic-coding")
    assert r.break_even_between is not None
    own, api = r.break_even_between
    assert own.self_hosted is not None and api.managed is not None
    sh, vol = own.self_hosted, r.request.volume
    pct = sh.perf.error_band_pct.get("output_tok_per_s")
    b = r.break_even_band
    if pct is None:
        assert b is None
        return
    assert b is not None and b.band_pct == pct
    price = api.managed.usd_per_request
    top = vol.requests_per_day * 1000
    for factor, v in ((1 + pct / 100, b.optimistic_requests_per_day),
                      (1 - pct / 100, b.pessimistic_requests_per_day)):  # fmt: skip
        # the same fleet with its capacity scaled, costed independently of the planner
        scaled = replace(sh, perf=replace(sh.perf, capacity_req_per_s=sh.perf.capacity_req_per_s
                                          * factor))  # fmt: skip
        if v is None:
            assert self_hosted_usd_per_day(scaled, vol, top) > price * top
        else:
            assert self_hosted_usd_per_day(scaled, vol, v) <= price * v * 1.001
            assert self_hosted_usd_per_day(scaled, vol, v * 0.99) > price * v * 0.99
    # a faster fleet breaks even no later than a slower one
    fast, slow = b.optimistic_requests_per_day, b.pessimistic_requests_per_day
    assert fast is not None or slow is None
    if fast is not None and slow is not None:
        assert fast <= slow
    # what the reader is told
    from moerun.render.plan_text import break_even_band_text

    text = break_even_band_text(r)
    assert f"(±{pct:.0f}%)" in text
    for v, side in ((fast, "if faster"), (slow, "if slower")):
        said = f"from {v:,.0f} requests/day {side}" if v is not None else f"not below 1000x {side}"
        assert said in text, text
