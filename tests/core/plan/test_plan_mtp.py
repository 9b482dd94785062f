"""MTP in a plan: each draft count is screened at its own acceptance, MTP off at none."""

from __future__ import annotations

from moerun.core.deploy.mtp import MTP_OFF, Mtp
from tests.fixtures.plan import make_request, run_plan


def test_each_draft_count_is_priced_at_its_measured_acceptance() -> None:
    req = make_request(mtp_options=(0, 1, 2), mtp_acceptance_by_tokens=((1, 0.6),))
    assert req.mtp(0) == MTP_OFF
    assert req.mtp(1) == Mtp(1, 0.6)  # measured at one draft
    assert req.mtp(2) == Mtp(2, req.mtp_acceptance)  # no measurement: the single value


def test_the_search_screens_each_deployment_with_its_acceptance() -> None:
    result = run_plan(mtp_acceptance_by_tokens=((1, 0.6),))
    screened = [*result.search.feasible, *result.search.infeasible]
    assert screened
    assert {(s.dep.mtp.num_draft_tokens, s.dep.mtp.acceptance) for s in screened} == {
        (0, 0.0),
        (1, 0.6),
    }
