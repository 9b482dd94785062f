"""GPU cloud prices as values: one provider's hourly rate for one GPU model."""

from __future__ import annotations

from dataclasses import dataclass

# How a price is offered; "on_demand" is the list price anyone can rent at.
PRICING_KINDS = ("on_demand", "reserved", "spot", "community", "marketplace")


@dataclass(frozen=True, slots=True)
class GpuPrice:
    """A sourced price per GPU-hour for one GPU model at one cloud provider."""

    provider: str
    provider_name: str
    gpu: str
    pricing: str
    usd_per_gpu_hour: float
    # The priced unit (an 8-GPU node, a 4-GPU GB200 tray, a 1-GPU VM); None = not stated.
    num_gpus_per_instance: int | None = None
    usd_per_instance_hour: float | None = None
    # True when usd_per_gpu_hour was computed as instance price / GPUs, not listed.
    per_gpu_derived: bool = False
    instance_type: str | None = None
    region: str | None = None
    # ISO 3166-1 alpha-2 codes of where the capacity sits; empty = unknown.
    jurisdiction: tuple[str, ...] = ()
    notes: str = ""
    source: tuple[str, ...] = ()
    as_of: str = ""
    as_of_iso: str | None = None

    @property
    def usd_per_node_hour(self) -> float | None:
        """Price of the priced instance per hour, derived from the GPU price if not listed."""
        if self.usd_per_instance_hour is not None:
            return self.usd_per_instance_hour
        if self.num_gpus_per_instance is None:
            return None
        return self.usd_per_gpu_hour * self.num_gpus_per_instance

    def usd_for(self, num_gpus: int, hours: float) -> float:
        """Cost of renting num_gpus of this GPU for the given hours at this rate."""
        return self.usd_per_gpu_hour * num_gpus * hours
