"""The packaged provider catalog: GLM offerings, certification semantics, jurisdiction."""

from __future__ import annotations

import pytest

from moerun.catalog.loader import load_providers, load_sources
from moerun.core.market.providers import CERT_STATUSES, CERTIFICATIONS, RETENTION_CLASSES


def test_providers_serving_glm_5_1() -> None:
    serving = [p.id for p in load_providers().values() if p.serving("GLM-5.1")]
    assert {"zai", "deepinfra", "fireworks", "together", "openrouter"} <= set(serving)


def test_zai_glm_5_1_reference_price() -> None:
    (model, *_) = load_providers()["zai"].serving("GLM-5.1")
    assert model.model_id == "glm-5.1"
    assert model.input_usd_per_mtok == pytest.approx(1.40)
    assert model.output_usd_per_mtok == pytest.approx(4.40)
    assert model.cached_input_usd_per_mtok == pytest.approx(0.26)
    assert model.context_tokens == 200_000
    assert model.usd_for(1_000_000, 1_000_000) == pytest.approx(5.80)


def test_claimed_is_kept_distinct_from_verified() -> None:
    providers = load_providers()
    together = providers["together"]
    # SOC 2 Type II is stated on a marketing page only: claimed, and it does not count.
    assert together.cert_status("soc2-type2") == "claimed"
    assert not together.has_certification("soc2-type2")
    # Nebius's DPA is in its own legal documents: verified, and it counts.
    assert providers["nebius"].cert_status("gdpr-dpa") == "verified"
    assert providers["nebius"].has_certification("gdpr-dpa")


def test_missing_certification_is_unknown() -> None:
    assert load_providers()["novita"].cert_status("iso27001") == "unknown"


def test_certifications_use_the_fixed_vocabulary() -> None:
    for provider in load_providers().values():
        assert set(provider.certifications) <= set(CERTIFICATIONS), provider.id
        assert set(provider.certifications.values()) <= set(CERT_STATUSES), provider.id
        assert provider.retention in RETENTION_CLASSES, provider.id


def test_eu_matches_member_state_codes() -> None:
    providers = load_providers()
    assert providers["nebius"].in_jurisdiction("EU")
    assert providers["nebius"].in_jurisdiction("FI")
    assert not providers["zai"].in_jurisdiction("EU")
    assert providers["zai"].in_jurisdiction("SG")
    # Unknown jurisdiction never matches.
    assert not providers["novita"].in_jurisdiction("US")


def test_every_provider_and_model_is_sourced_and_dated() -> None:
    sources = load_sources()
    for provider in load_providers().values():
        assert provider.source and provider.as_of, provider.id
        for model in provider.models:
            assert model.source and model.as_of, (provider.id, model.listed_as)
            assert all(sid in sources for sid in model.source), (provider.id, model.listed_as)
            for perf in model.perf:
                assert perf.source and perf.as_of


def test_known_prices_are_non_negative_and_unknown_stay_none() -> None:
    for provider in load_providers().values():
        for model in provider.models:
            for price in (model.input_usd_per_mtok, model.output_usd_per_mtok):
                assert price is None or price >= 0
    (nebius_51,) = load_providers()["nebius"].serving("GLM-5.1")
    assert not nebius_51.has_price
    assert nebius_51.usd_for(1000, 1000) is None


def test_published_throughput_is_attached_to_the_model() -> None:
    (friendli,) = load_providers()["friendli"].serving("GLM-5.1")
    assert any(p.output_tokens_per_s == pytest.approx(157.6) for p in friendli.perf)


def test_router_is_marked() -> None:
    assert load_providers()["openrouter"].is_router
    assert not load_providers()["zai"].is_router
