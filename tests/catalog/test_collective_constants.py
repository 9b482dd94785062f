"""The roofline's collective constants are measured on each GPU, not assumed."""

from __future__ import annotations

import pytest

from moerun.catalog.gpus import get_gpu
from moerun.catalog.perf.calibration import calibration_for
from tests.conftest import raw_kernel_file


def test_h200_sglang_collectives_come_from_its_all_reduce_table() -> None:
    raw = raw_kernel_file("h200_sxm")
    eight = next(r for r in raw["all_reduce"] if int(r["num_gpus"]) == 8)
    # a ring all-reduce moves 2 (n - 1) / n of the message per GPU: 1.75 x 512 MiB in 4.021 ms
    bus_bw = 1.75 * eight["bytes"][-1] / (eight["latency_ms"][-1] / 1e3)
    assert bus_bw == pytest.approx(233.6e9, rel=1e-3)
    params = calibration_for("h200_sxm", "sglang").params
    link = get_gpu("h200_sxm").scale_up_bw_bytes_per_s
    assert link is not None
    assert params.comm_efficiency == pytest.approx(bus_bw / link)
    assert params.collective_latency_s == pytest.approx(eight["latency_ms"][0] / 1e3)


def test_a_gpu_without_tables_keeps_the_profiles_constants() -> None:
    cal = calibration_for("mi300x", "vllm")
    assert cal.params.kernels is None and cal.profile is not None
    assert cal.params.comm_efficiency == cal.profile.params.comm_efficiency
    assert cal.params.collective_latency_s == cal.profile.params.collective_latency_s
