"""The KV capacity factor moves away from moerun's own estimate only when the runs need it."""

from __future__ import annotations

from moerun.catalog.perf.calibration import DEFAULT_MTP_ACCEPTANCE
from moerun.catalog.perf.measurements import catalog_measurements
from moerun.commands.calibrate import calibrate_runs


def test_runs_whose_kv_never_fills_keep_the_estimate() -> None:
    # one request at a time, 10 prompts of at most 1,000 + 1,000 tokens on 8x B200: the KV cache
    # holds millions of tokens, so no factor between 0.5 and 1.05 changes a single step
    runs = catalog_measurements(("deepseek-r1-fp8-8xb200-sglang.csv",))
    run = next(r for r in runs if r.id == "DR-01")
    assert run.concurrency == 1
    group = calibrate_runs([run], DEFAULT_MTP_ACCEPTANCE)["groups"][0]
    assert group["kv_capacity_factor"] == 1.0
