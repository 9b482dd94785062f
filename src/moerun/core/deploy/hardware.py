"""Accelerators as values: memory as the device reports it, bandwidths, dense TFLOPS."""

from __future__ import annotations

from dataclasses import dataclass, field

# Compute dtypes a GPU may have dense tensor-core throughput for.
COMPUTE_DTYPES = ("bf16", "fp8", "fp4")


@dataclass(frozen=True, slots=True)
class GPU:
    """One accelerator model, as the catalog describes it (every number sourced there)."""

    id: str
    name: str
    vendor: str
    # Memory as the driver reports it (nvidia-smi MiB x 2**20), not the marketed "80 GB".
    memory_bytes: int
    marketed_memory_gb: float
    mem_bw_bytes_per_s: float
    # Dense (non-sparse) tensor throughput per compute dtype; a dtype absent here has no
    # tensor-core support (A100 has no fp8, Hopper has no fp4).
    dense_tflops: dict[str, float] = field(default_factory=dict)
    # Scale-up (NVLink / Infinity Fabric) bandwidth per GPU, one direction; None = no fabric.
    scale_up_bw_bytes_per_s: float | None = None
    # Scale-out (inter-node network) bandwidth per GPU, one direction.
    scale_out_bw_bytes_per_s: float | None = None
    # What predictions assume when the scale-out bandwidth is unknown (the catalog's stated
    # assumption, with its source there).
    scale_out_assumed_bw_bytes_per_s: float | None = None
    gpus_per_node: int = 8
    # GPUs in one NVLink / Infinity Fabric domain (72 on GB200 NVL72; None: no such fabric)
    scale_up_domain_gpus: int | None = None
    source: tuple[str, ...] = ()
    as_of: str = ""

    @property
    def memory_gib(self) -> float:
        """Device memory in GiB (2**30 bytes)."""
        return self.memory_bytes / 2**30

    @property
    def network_bw_bytes_per_s(self) -> float:
        """Scale-out bandwidth per GPU for predictions: the known one, else the assumed one."""
        bw = self.scale_out_bw_bytes_per_s or self.scale_out_assumed_bw_bytes_per_s
        if bw is None:
            raise ValueError(f"{self.id}: no scale-out bandwidth, known or assumed")
        return bw

    def supports(self, compute_dtype: str) -> bool:
        """Whether the GPU has tensor cores for this compute dtype (bf16, fp8, fp4)."""
        return compute_dtype in self.dense_tflops
