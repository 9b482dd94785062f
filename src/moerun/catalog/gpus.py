"""GPU catalog: gpus.yaml -> GPU values (memory as the device reports it, bandwidths in bytes/s)."""

from __future__ import annotations

import functools

from moerun.catalog.files import check_sources, parse_file, read_package_file
from moerun.catalog.schema import GpuEntry, GpusFile
from moerun.core.deploy.hardware import GPU
from moerun.errors import CatalogError

GPUS_FILE = "gpus.yaml"


def parse_gpus(text: str, filename: str = GPUS_FILE) -> dict[str, GPU]:
    """Validate gpus.yaml text and build GPU values keyed by id."""
    data = parse_file(text, filename, GpusFile)
    gpus: dict[str, GPU] = {}
    check_sources(filename, "scale_out_assumed_source", data.scale_out_assumed_source, data.sources)
    assumed = data.scale_out_assumed_gbps_per_gpu * 1e9 / 8
    for i, entry in enumerate(data.gpus):
        where = f"gpus[{i}]"
        if entry.id in gpus:
            raise CatalogError(f"{filename}: {where}.id: duplicate GPU id {entry.id!r}")
        cited = [*entry.source, *entry.memory_source, *entry.scale_out_source]
        check_sources(filename, where, cited, data.sources)
        gpus[entry.id] = _to_gpu(entry, filename, where, assumed)
    return gpus


def _to_gpu(entry: GpuEntry, filename: str, where: str, assumed_bw: float) -> GPU:
    return GPU(
        id=entry.id,
        name=entry.name,
        vendor=entry.vendor,
        memory_bytes=_memory_bytes(entry, filename, where),
        marketed_memory_gb=entry.marketed_memory_gb,
        mem_bw_bytes_per_s=entry.mem_bw_tbps * 1e12,
        dense_tflops=dict(entry.dense_tflops),
        scale_up_bw_bytes_per_s=_scale_up_one_way(entry, filename, where),
        # Network link rates (400 Gb/s NDR) are per direction; bits -> bytes.
        scale_out_bw_bytes_per_s=(
            None if entry.scale_out_gbps_per_gpu is None else entry.scale_out_gbps_per_gpu * 1e9 / 8
        ),
        scale_out_assumed_bw_bytes_per_s=assumed_bw,
        gpus_per_node=entry.gpus_per_node,
        scale_up_domain_gpus=entry.scale_up_domain_gpus,
        source=tuple(dict.fromkeys([*entry.source, *entry.memory_source, *entry.scale_out_source])),
        as_of=entry.as_of,
    )


def _memory_bytes(entry: GpuEntry, filename: str, where: str) -> int:
    if entry.memory_reported:
        if entry.memory_mib is None or not entry.memory_source:
            raise CatalogError(
                f"{filename}: {where}.memory_mib: memory_reported is true but memory_mib "
                "or memory_source is missing"
            )
        return entry.memory_mib * 2**20
    if entry.memory_mib is not None:
        raise CatalogError(
            f"{filename}: {where}.memory_mib: set while memory_reported is false; "
            "a driver-reported figure must say so"
        )
    # No printout found: fall back to the marketed decimal GB.
    return round(entry.marketed_memory_gb * 1e9)


def _scale_up_one_way(entry: GpuEntry, filename: str, where: str) -> float | None:
    if entry.scale_up_bw_gbps is None:
        return None
    if entry.scale_up_bw_direction is None:
        raise CatalogError(
            f"{filename}: {where}.scale_up_bw_direction: required when scale_up_bw_gbps is set"
        )
    bytes_per_s = entry.scale_up_bw_gbps * 1e9
    # NVLink catalog figures are two-way totals (H100 900 GB/s = 450 GB/s each way).
    return bytes_per_s / 2 if entry.scale_up_bw_direction == "bidirectional" else bytes_per_s


@functools.cache
def _cached_gpus() -> dict[str, GPU]:
    return parse_gpus(read_package_file(GPUS_FILE))


def load_gpus() -> dict[str, GPU]:
    """All GPUs in the packaged catalog, keyed by id (a fresh dict over cached values)."""
    return dict(_cached_gpus())


def get_gpu(gpu_id: str) -> GPU:
    """One GPU by id; an unknown id raises CatalogError listing the valid ids."""
    gpus = _cached_gpus()
    if gpu_id not in gpus:
        raise CatalogError(
            f"unknown GPU id {gpu_id!r} in {GPUS_FILE}; valid ids: {', '.join(sorted(gpus))}"
        )
    return gpus[gpu_id]
