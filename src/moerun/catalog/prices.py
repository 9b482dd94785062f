"""GPU price catalog: gpu_prices.yaml -> GpuPrice values, checked against the GPU ids."""

from __future__ import annotations

import functools
import math
from collections.abc import Collection

from moerun.catalog.files import check_sources, parse_file, read_package_file
from moerun.catalog.gpus import load_gpus
from moerun.catalog.schema import PriceEntry, PricesFile
from moerun.core.market.pricing import GpuPrice
from moerun.errors import CatalogError

PRICES_FILE = "gpu_prices.yaml"


def parse_gpu_prices(
    text: str, filename: str = PRICES_FILE, gpu_ids: Collection[str] | None = None
) -> list[GpuPrice]:
    """Validate gpu_prices.yaml text; with gpu_ids, every price must name a known GPU."""
    data = parse_file(text, filename, PricesFile)
    prices = []
    for i, entry in enumerate(data.prices):
        where = f"prices[{i}]"
        check_sources(filename, where, entry.source, data.sources)
        _check_gpu(filename, where, entry.gpu, gpu_ids)
        _check_instance_price(filename, where, entry)
        prices.append(_to_price(entry))
    for i, unpriced in enumerate(data.unpriced):
        where = f"unpriced[{i}]"
        check_sources(filename, where, unpriced.source, data.sources)
        _check_gpu(filename, where, unpriced.gpu, gpu_ids)
    return prices


def _check_gpu(filename: str, where: str, gpu: str, gpu_ids: Collection[str] | None) -> None:
    if gpu_ids is not None and gpu not in gpu_ids:
        valid = ", ".join(sorted(gpu_ids))
        raise CatalogError(f"{filename}: {where}.gpu: unknown GPU id {gpu!r}; valid ids: {valid}")


def _check_instance_price(filename: str, where: str, entry: PriceEntry) -> None:
    num, instance = entry.num_gpus_per_instance, entry.usd_per_instance_hour
    if entry.per_gpu_derived and (num is None or instance is None):
        raise CatalogError(
            f"{filename}: {where}.per_gpu_derived: needs num_gpus_per_instance and "
            "usd_per_instance_hour to derive from"
        )
    if (
        num is not None
        and instance is not None
        and not math.isclose(entry.usd_per_gpu_hour * num, instance, rel_tol=1e-3)
    ):
        raise CatalogError(
            f"{filename}: {where}.usd_per_gpu_hour: {entry.usd_per_gpu_hour} x {num} GPUs "
            f"does not match usd_per_instance_hour {instance}"
        )


def _to_price(entry: PriceEntry) -> GpuPrice:
    return GpuPrice(
        provider=entry.provider,
        provider_name=entry.provider_name,
        gpu=entry.gpu,
        pricing=entry.pricing,
        usd_per_gpu_hour=entry.usd_per_gpu_hour,
        num_gpus_per_instance=entry.num_gpus_per_instance,
        usd_per_instance_hour=entry.usd_per_instance_hour,
        per_gpu_derived=entry.per_gpu_derived,
        instance_type=entry.instance_type,
        region=entry.region,
        jurisdiction=tuple(entry.jurisdiction),
        notes=entry.notes,
        source=tuple(entry.source),
        as_of=entry.as_of,
        as_of_iso=entry.as_of_iso,
    )


@functools.cache
def _cached_prices() -> tuple[GpuPrice, ...]:
    return tuple(parse_gpu_prices(read_package_file(PRICES_FILE), gpu_ids=load_gpus().keys()))


def load_gpu_prices() -> list[GpuPrice]:
    """All sourced GPU prices in the packaged catalog (unknown prices are never included)."""
    return list(_cached_prices())
