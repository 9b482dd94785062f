"""Broken catalog files fail with CatalogError naming the file and the field."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import yaml

from moerun.catalog.files import load_yaml, read_package_file
from moerun.catalog.loader import parse_gpu_prices, parse_gpus, parse_providers
from moerun.errors import CatalogError


def _edited(filename: str, edit: Callable[[dict[str, Any]], None]) -> str:
    data = load_yaml(read_package_file(filename))
    edit(data)
    return yaml.dump(data, Dumper=yaml.CSafeDumper, sort_keys=False)


def test_packaged_files_parse() -> None:
    assert parse_gpus(read_package_file("gpus.yaml"))
    assert parse_gpu_prices(read_package_file("gpu_prices.yaml"))
    assert parse_providers(read_package_file("providers.yaml"))


def test_bad_number_names_file_and_field() -> None:
    def edit(d: dict[str, Any]) -> None:
        d["gpus"][2]["mem_bw_tbps"] = "fast"

    with pytest.raises(CatalogError, match=r"^gpus\.yaml: gpus\[2\]\.mem_bw_tbps: .*number"):
        parse_gpus(_edited("gpus.yaml", edit))


def test_invalid_yaml_names_file() -> None:
    with pytest.raises(CatalogError, match=r"^broken\.yaml: not valid YAML"):
        parse_gpus("gpus: [unclosed", filename="broken.yaml")


def test_misspelt_field_is_rejected() -> None:
    def edit(d: dict[str, Any]) -> None:
        d["gpus"][0]["mem_bandwidth_tbps"] = d["gpus"][0].pop("mem_bw_tbps")

    with pytest.raises(CatalogError, match=r"gpus\[0\]\.(mem_bw_tbps|mem_bandwidth_tbps)"):
        parse_gpus(_edited("gpus.yaml", edit))


def test_unknown_source_id_is_rejected() -> None:
    def edit(d: dict[str, Any]) -> None:
        d["gpus"][1]["source"] = ["S9999"]

    with pytest.raises(CatalogError, match=r"gpus\[1\]\.source: unknown source id 'S9999'"):
        parse_gpus(_edited("gpus.yaml", edit))


def test_missing_source_is_rejected() -> None:
    def edit(d: dict[str, Any]) -> None:
        d["gpus"][0]["source"] = []

    with pytest.raises(CatalogError, match=r"gpus\[0\]\.source"):
        parse_gpus(_edited("gpus.yaml", edit))


def test_reported_memory_needs_a_figure() -> None:
    def edit(d: dict[str, Any]) -> None:
        d["gpus"][0]["memory_mib"] = None

    with pytest.raises(CatalogError, match=r"gpus\[0\]\.memory_mib"):
        parse_gpus(_edited("gpus.yaml", edit))


def test_unknown_compute_dtype_is_rejected() -> None:
    def edit(d: dict[str, Any]) -> None:
        d["gpus"][0]["dense_tflops"]["int4"] = 1.0

    with pytest.raises(CatalogError, match=r"gpus\[0\]\.dense_tflops"):
        parse_gpus(_edited("gpus.yaml", edit))


def test_price_for_unknown_gpu_is_rejected() -> None:
    def edit(d: dict[str, Any]) -> None:
        d["prices"][0]["gpu"] = "h300_sxm"

    text = _edited("gpu_prices.yaml", edit)
    with pytest.raises(CatalogError, match=r"gpu_prices\.yaml: prices\[0\]\.gpu: .*h100_sxm"):
        parse_gpu_prices(text, gpu_ids={"h100_sxm", "b200_sxm"})


def test_non_positive_price_is_rejected() -> None:
    def edit(d: dict[str, Any]) -> None:
        d["prices"][3]["usd_per_gpu_hour"] = 0

    with pytest.raises(CatalogError, match=r"prices\[3\]\.usd_per_gpu_hour"):
        parse_gpu_prices(_edited("gpu_prices.yaml", edit))


def test_inconsistent_instance_price_is_rejected() -> None:
    def edit(d: dict[str, Any]) -> None:
        entry = next(p for p in d["prices"] if p["usd_per_instance_hour"] is not None)
        entry["usd_per_gpu_hour"] *= 2

    with pytest.raises(CatalogError, match=r"does not match usd_per_instance_hour"):
        parse_gpu_prices(_edited("gpu_prices.yaml", edit))


def test_certification_status_outside_vocabulary_is_rejected() -> None:
    def edit(d: dict[str, Any]) -> None:
        d["providers"][0]["certifications"]["soc2-type2"] = "certified"

    with pytest.raises(CatalogError, match=r"providers\[0\]\.certifications\.soc2-type2"):
        parse_providers(_edited("providers.yaml", edit))


def test_certification_name_outside_vocabulary_is_rejected() -> None:
    def edit(d: dict[str, Any]) -> None:
        d["providers"][0]["certifications"]["soc3"] = "verified"

    with pytest.raises(CatalogError, match=r"providers\[0\]\.certifications"):
        parse_providers(_edited("providers.yaml", edit))


@pytest.mark.parametrize("code", ["Singapore", "sg", "EU"])
def test_jurisdiction_must_be_a_country_code(code: str) -> None:
    # "EU" is matched in code from member-state codes; the data lists countries only.
    def edit(d: dict[str, Any]) -> None:
        d["providers"][0]["jurisdiction"] = [code]

    with pytest.raises(CatalogError, match=r"providers\[0\]\.jurisdiction\[0\]"):
        parse_providers(_edited("providers.yaml", edit))


def test_duplicate_provider_id_is_rejected() -> None:
    def edit(d: dict[str, Any]) -> None:
        d["providers"][1]["id"] = d["providers"][0]["id"]

    with pytest.raises(CatalogError, match=r"providers\[1\]\.id: duplicate"):
        parse_providers(_edited("providers.yaml", edit))
