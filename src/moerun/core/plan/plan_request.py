"""What a plan is asked (PlanRequest) and what it may choose from (PlanCatalog)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from moerun.core.calibrate.calibration import Calibration
from moerun.core.deploy.engine import EngineMemory, ReserveModel
from moerun.core.deploy.hardware import GPU
from moerun.core.deploy.mtp import Mtp
from moerun.core.deploy.support import SupportMatrix
from moerun.core.load.metrics import Slo
from moerun.core.market.offers import CloudOffer
from moerun.core.market.policy import Policy
from moerun.core.market.pricing import PRICING_KINDS
from moerun.core.market.providers import Provider
from moerun.core.model.model_spec import ModelSpec
from moerun.core.plan.demand import Volume, WorkloadPreset
from moerun.errors import UsageError


@dataclass(frozen=True, slots=True)
class PlanRequest:
    """A team's question: model, workload, volume, SLO, policy, budget and search bounds."""

    model: ModelSpec
    preset: WorkloadPreset
    volume: Volume
    slo: Slo
    # per drafted token; the caller passes the catalog's default or the team's own number
    mtp_acceptance: float
    policy: Policy = field(default_factory=Policy)
    # GPU cloud provider ids the team may rent from (None: any in the catalog)
    gpu_clouds: tuple[str, ...] | None = None
    # managed provider ids the team would use (None: any that passes the policy)
    providers: tuple[str, ...] | None = None
    pricing: tuple[str, ...] = ("on_demand",)
    budget_usd_per_month: float | None = None
    gpus: tuple[str, ...] | None = None
    node_counts: tuple[int, ...] = (1, 2, 4)
    weights: tuple[str, ...] = ("fp8",)
    engines: tuple[str, ...] = ("vllm", "sglang")
    mtp_options: tuple[int, ...] = (0, 1, 2, 3)
    # measured per-token acceptance by MTP draft count (from the catalog; overrides the
    # single value `mtp_acceptance`), the range the model's measurements span, and their source
    mtp_acceptance_by_tokens: tuple[tuple[int, float], ...] = ()
    mtp_acceptance_range: tuple[float, float] | None = None
    mtp_acceptance_source: str = ""
    disaggregation: bool = True
    simulate: bool = True
    num_finalists: int = 4
    api_cache_hit_fraction: float = 0.8
    hours_per_month: float = 730.0
    min_tok_per_s_per_user: float | None = None
    seed: int = 0
    # rank combinations no source verifies (marked); known-unsupported ones never are
    allow_unverified: bool = False

    def mtp(self, num_draft_tokens: int) -> Mtp:
        """`num_draft_tokens` drafts at the acceptance to price them with: the measured one
        for that draft count, else the single value (MTP off without drafts)."""
        by_tokens = dict(self.mtp_acceptance_by_tokens)
        return Mtp.drafting(num_draft_tokens, by_tokens.get(num_draft_tokens, self.mtp_acceptance))

    def check(self) -> None:
        """UsageError for a contradictory or empty request (one line saying which)."""
        p = self.policy
        if p.self_hosted_only and self.gpu_clouds is not None and not self.gpu_clouds:
            raise UsageError(
                "contradictory policy: self-hosting only, but no GPU cloud is allowed "
                "(allow one with --gpu-clouds, or drop --self-hosted-only)"
            )
        if p.self_hosted_only and self.providers:
            raise UsageError(
                "contradictory policy: self-hosting only, but managed providers were named "
                f"({', '.join(self.providers)}); drop one of the two"
            )
        bad = [k for k in self.pricing if k not in PRICING_KINDS]
        if bad or not self.pricing:
            raise UsageError(f"pricing must be among {', '.join(PRICING_KINDS)}, not {bad}")
        if self.budget_usd_per_month is not None and self.budget_usd_per_month <= 0:
            raise UsageError("the budget must be a positive number of USD per month")
        if self.volume.requests_per_day <= 0:
            raise UsageError("the volume must be positive")
        if not 0 <= self.mtp_acceptance < 1:
            raise UsageError("the MTP acceptance rate must be in [0, 1)")
        for name, bound in (("TTFT", self.slo.ttft_ms), ("TPOT", self.slo.tpot_ms)):
            if bound is not None and bound <= 0:
                raise UsageError(f"the p99 {name} bound must be positive")


@dataclass(frozen=True, slots=True)
class PlanCatalog:
    """The catalog values a plan chooses from (loaded by the caller, so core reads no files)."""

    gpus: dict[str, GPU]
    engines: dict[str, EngineMemory]
    reserve: ReserveModel
    clouds: tuple[CloudOffer, ...]
    providers: dict[str, Provider]
    calibration: Callable[[str, str, str, str], Calibration]
    # weight format -> quality note shown next to options that use it
    weight_notes: dict[str, str] = field(default_factory=dict)
    # human descriptions of prices a --prices file replaced or added
    overridden: tuple[str, ...] = ()
    # what is known to serve (catalog/support.yaml); empty: nothing is verified
    support: SupportMatrix = field(default_factory=SupportMatrix)
