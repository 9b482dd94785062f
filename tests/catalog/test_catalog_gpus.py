"""The packaged GPU catalog: ids, driver-reported memory, dtypes, bandwidth units, citations."""

from __future__ import annotations

import pytest

from moerun.catalog.loader import get_gpu, load_gpus, load_sources
from moerun.core.deploy.hardware import COMPUTE_DTYPES
from moerun.errors import CatalogError

REQUIRED_IDS = (
    "a100_sxm",
    "h100_sxm",
    "h200_sxm",
    "b200_sxm",
    "gb200",
    "l40s",
    "mi300x",
    "mi325x",
    "mi355x",
)


def test_required_gpu_ids_are_present() -> None:
    assert set(REQUIRED_IDS) <= set(load_gpus())


def test_ids_match_keys() -> None:
    assert all(gpu.id == key for key, gpu in load_gpus().items())


@pytest.mark.parametrize(
    ("gpu_id", "mib"),
    [
        ("h100_sxm", 81559),
        ("h200_sxm", 143771),
        ("a100_sxm", 81920),
        ("b200_sxm", 183359),
        ("gb200", 189471),
        ("l40s", 46068),
        ("mi300x", 196592),
    ],
)
def test_memory_is_what_the_driver_reports(gpu_id: str, mib: int) -> None:
    assert get_gpu(gpu_id).memory_bytes == mib * 2**20


def test_h100_memory_bytes() -> None:
    assert get_gpu("h100_sxm").memory_bytes == 81559 * 2**20


def test_unreported_memory_falls_back_to_marketed_decimal_gb() -> None:
    assert get_gpu("mi325x").memory_bytes == 256 * 10**9


def test_a100_has_no_fp8_or_fp4() -> None:
    a100 = get_gpu("a100_sxm")
    assert a100.supports("bf16")
    assert not a100.supports("fp8")
    assert not a100.supports("fp4")


def test_hopper_has_fp8_but_not_fp4_and_blackwell_has_fp4() -> None:
    assert get_gpu("h100_sxm").supports("fp8")
    assert not get_gpu("h100_sxm").supports("fp4")
    assert get_gpu("b200_sxm").supports("fp4")


def test_dense_tflops_use_known_dtypes_and_positive_values() -> None:
    for gpu in load_gpus().values():
        assert gpu.dense_tflops, gpu.id
        assert set(gpu.dense_tflops) <= set(COMPUTE_DTYPES), gpu.id
        assert all(v > 0 for v in gpu.dense_tflops.values()), gpu.id


def test_nvlink_is_exposed_one_direction() -> None:
    # Catalog 900 GB/s is the two-way total; 450 GB/s each way.
    assert get_gpu("h100_sxm").scale_up_bw_bytes_per_s == pytest.approx(450e9)
    assert get_gpu("b200_sxm").scale_up_bw_bytes_per_s == pytest.approx(900e9)


def test_units_are_bytes_per_second() -> None:
    h100 = get_gpu("h100_sxm")
    assert h100.mem_bw_bytes_per_s == pytest.approx(3.35e12)
    assert h100.scale_out_bw_bytes_per_s == pytest.approx(400e9 / 8)


def test_l40s_has_no_scale_up_fabric() -> None:
    assert get_gpu("l40s").scale_up_bw_bytes_per_s is None


def test_gb200_node_is_a_four_gpu_tray() -> None:
    assert get_gpu("gb200").gpus_per_node == 4
    assert get_gpu("h200_sxm").gpus_per_node == 8


def test_every_gpu_has_resolvable_sources_and_as_of() -> None:
    sources = load_sources()
    for gpu in load_gpus().values():
        assert gpu.source, gpu.id
        assert gpu.as_of, gpu.id
        assert all(sid in sources for sid in gpu.source), gpu.id


def test_unknown_gpu_id_names_it_and_lists_valid_ids() -> None:
    with pytest.raises(CatalogError) as excinfo:
        get_gpu("h300_sxm")
    message = str(excinfo.value)
    assert "'h300_sxm'" in message
    assert all(gpu_id in message for gpu_id in REQUIRED_IDS)


def test_load_gpus_returns_a_fresh_dict() -> None:
    gpus = load_gpus()
    gpus.pop("h100_sxm")
    assert "h100_sxm" in load_gpus()


def test_unknown_scale_out_uses_the_catalogs_stated_assumption() -> None:
    h100, h200 = get_gpu("h100_sxm"), get_gpu("h200_sxm")
    assert h100.network_bw_bytes_per_s == h100.scale_out_bw_bytes_per_s  # known: used as is
    assert h200.scale_out_bw_bytes_per_s is None
    assert h200.network_bw_bytes_per_s == pytest.approx(400e9 / 8)  # 400 Gb/s per GPU, assumed
