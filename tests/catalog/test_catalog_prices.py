"""The packaged GPU price catalog: positive sourced prices for known GPUs, nothing guessed."""

from __future__ import annotations

import pytest

from moerun.catalog.loader import load_gpu_prices, load_gpus, load_sources
from moerun.core.market.pricing import PRICING_KINDS


def test_prices_load() -> None:
    assert len(load_gpu_prices()) > 20


def test_prices_are_positive() -> None:
    for price in load_gpu_prices():
        assert price.usd_per_gpu_hour > 0, price
        if price.usd_per_instance_hour is not None:
            assert price.usd_per_instance_hour > 0, price


def test_prices_name_known_gpus_and_pricing_kinds() -> None:
    gpus = load_gpus()
    for price in load_gpu_prices():
        assert price.gpu in gpus, price
        assert price.pricing in PRICING_KINDS, price


def test_every_price_has_resolvable_sources_and_as_of() -> None:
    sources = load_sources()
    for price in load_gpu_prices():
        assert price.source and price.as_of, price
        assert all(sid in sources for sid in price.source), price


def test_derived_per_gpu_prices_match_instance_prices() -> None:
    for price in load_gpu_prices():
        if price.per_gpu_derived:
            assert price.num_gpus_per_instance is not None
            assert price.usd_per_instance_hour is not None
            assert price.usd_per_gpu_hour * price.num_gpus_per_instance == pytest.approx(
                price.usd_per_instance_hour, rel=1e-3
            )


def test_unknown_prices_are_not_loaded() -> None:
    # GMI's H200 price was never found (only a vendor blog claim); it must not appear.
    assert not [p for p in load_gpu_prices() if p.provider == "gmi-cloud" and p.gpu == "h200_sxm"]


def test_coreweave_h100_node_price() -> None:
    (price,) = [
        p
        for p in load_gpu_prices()
        if p.provider == "coreweave" and p.gpu == "h100_sxm" and p.pricing == "on_demand"
    ]
    assert price.usd_per_gpu_hour == pytest.approx(6.155)
    assert price.usd_per_node_hour == pytest.approx(49.24)
    assert price.usd_for(num_gpus=16, hours=1.0) == pytest.approx(16 * 6.155)


def test_jurisdictions_are_country_codes() -> None:
    for price in load_gpu_prices():
        assert all(len(c) == 2 and c.isupper() for c in price.jurisdiction), price
