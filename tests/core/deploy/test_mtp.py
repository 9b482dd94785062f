"""Mtp: drafts and their acceptance as one value; no drafts, no acceptance."""

from __future__ import annotations

import pytest

from moerun.core.deploy.mtp import MTP_OFF, Mtp
from tests.conftest import make_deployment


def test_no_drafts_means_no_acceptance() -> None:
    assert Mtp.drafting(0, 0.85) == MTP_OFF == Mtp()
    assert MTP_OFF.acceptance == 0.0 and not MTP_OFF.enabled
    assert MTP_OFF.with_acceptance(0.9) == MTP_OFF
    with pytest.raises(ValueError, match="no MTP drafts"):
        Mtp(0, 0.85)
    assert Mtp.drafting(0, 0.0, pinned=True) == MTP_OFF
    with pytest.raises(ValueError, match="no MTP drafts"):
        Mtp(0, 0.0, pinned=True)


def test_a_pinned_acceptance_stays_pinned_at_another_value() -> None:
    pinned = Mtp.drafting(3, 0.8, pinned=True)
    assert pinned.with_acceptance(0.5) == Mtp(3, 0.5, pinned=True)
    # the same mean; no per-sequence spread (the batch shares one draw per step)
    assert pinned.tokens_per_step == Mtp.drafting(3, 0.8).tokens_per_step
    assert pinned.tokens_per_step_variance == 0.0 < Mtp.drafting(3, 0.8).tokens_per_step_variance


def test_drafts_keep_their_acceptance() -> None:
    mtp = Mtp.drafting(2, 0.5)
    assert (mtp.num_draft_tokens, mtp.acceptance, mtp.enabled) == (2, 0.5, True)
    assert mtp.with_acceptance(0.25) == Mtp(2, 0.25)
    # 1 + 0.5 + 0.25 tokens per step on average, at most 3
    assert mtp.tokens_per_step == pytest.approx(1.75) and mtp.max_tokens_per_step == 3
    assert MTP_OFF.tokens_per_step == 1.0 and MTP_OFF.max_tokens_per_step == 1


@pytest.mark.parametrize(("k", "a"), [(-1, 0.0), (1, 1.0), (1, -0.1)])
def test_out_of_range_values_are_refused(k: int, a: float) -> None:
    with pytest.raises(ValueError):
        Mtp(k, a)


def test_a_deployment_is_off_unless_told() -> None:
    assert make_deployment().mtp == MTP_OFF
