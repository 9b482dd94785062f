"""sgl-router's balance thresholds in the catalog: sglang-router 0.3.2's defaults, sourced."""

from __future__ import annotations

import yaml

from moerun.catalog.engines import sgl_router_balance
from moerun.catalog.files import read_package_file
from moerun.core.traffic.balance import BalanceRule


def test_thresholds_are_sglang_router_defaults() -> None:
    # sglang-router 0.3.2, sglang_router/router_args.py: RouterArgs.balance_abs_threshold: int =
    # 64, balance_rel_threshold: float = 1.5
    assert sgl_router_balance() == BalanceRule(abs_threshold=64, rel_threshold=1.5)


def test_thresholds_carry_source_and_date() -> None:
    entry = yaml.safe_load(read_package_file("engines.yaml"))["sgl_router"]
    assert str(entry["version"]) == "0.3.2"
    sources = " ".join(entry["source"])
    assert "router_args.py" in sources and "cache_aware.rs" in sources
    assert str(entry["as_of"]).startswith("2026-")
