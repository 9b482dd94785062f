"""Build simulated replicas from a Deployment, and run a workload on them."""

from __future__ import annotations

from dataclasses import dataclass, field

from moerun.core.deploy.deployment import Deployment
from moerun.core.deploy.memory_fit import memory_fit
from moerun.core.load.workload import Workload
from moerun.core.model.kv_cache import kv_bytes_per_token
from moerun.core.perf.step_time import StepModel, StepParams
from moerun.core.sim.engine import EngineConfig, EngineReplica
from moerun.core.sim.router import ROUTINGS
from moerun.core.sim.simulator import Disaggregation, SimResult, simulate
from moerun.core.traffic.balance import BalanceRule
from moerun.errors import LayoutError

ENGINE_POLICY = {"vllm": "mixed", "sglang": "prefill_first"}


@dataclass(frozen=True, slots=True)
class SimOptions:
    """How to simulate: replicas, routing, scheduler switches, efficiencies (MTP drafts and
    their acceptance come with the deployment)."""

    num_replicas: int = 1
    routing: str = "round-robin"
    # sgl-router's imbalance rule, which prefix-affinity routing needs (catalog's thresholds)
    balance: BalanceRule | None = None
    chunked_prefill: bool = True
    prefix_caching: bool = True
    max_num_seqs: int | None = None
    params: StepParams = field(default_factory=StepParams)
    # prefill/decode disaggregation: prefill instances of the deployment, decode instances
    # of `decode` (the same deployment when None), KV crossing the scale-out network
    num_prefill: int = 0
    num_decode: int = 0
    # The engine's real KV capacity relative to the memory fit's estimate (calibrated: the
    # engines' start-up reserve is an assumption of the fit, see Calibration).
    kv_capacity_factor: float = 1.0

    def __post_init__(self) -> None:
        if self.num_replicas < 1:
            raise ValueError("at least one replica")
        if self.routing not in ROUTINGS:
            raise ValueError(f"routing must be one of {ROUTINGS}")
        if self.routing == "prefix-affinity" and self.balance is None:
            raise ValueError("prefix-affinity routing needs sgl-router's balance rule")
        if not 0.1 <= self.kv_capacity_factor <= 2.0:
            raise ValueError("the KV capacity factor must be in [0.1, 2]")
        if (self.num_prefill > 0) != (self.num_decode > 0):
            raise ValueError("disaggregation needs both prefill and decode instances")


def build_replica(
    dep: Deployment,
    options: SimOptions | None = None,
    *,
    params: StepParams | None = None,
    track_tokens: bool = False,
) -> EngineReplica:
    """One simulated replica of `dep`; LayoutError when the deployment cannot run."""
    opts = options or SimOptions()
    fit = memory_fit(dep)
    if not fit.fits:
        raise LayoutError("the deployment cannot run: " + "; ".join(fit.reasons))
    model = StepModel(dep, params or opts.params)
    ranks = fit.num_kv_ranks
    budget = dep.batched_tokens * ranks
    if not opts.chunked_prefill:
        budget = max(budget, dep.effective_max_context)
    config = EngineConfig(
        policy=ENGINE_POLICY[dep.engine.name],
        max_num_batched_tokens=budget,
        max_num_seqs=(
            opts.max_num_seqs or dep.max_num_seqs_per_rank(fit.kv_capacity_tokens_per_rank)
        )
        * ranks,
        kv_capacity_tokens=max(1, int(fit.kv_capacity_tokens * opts.kv_capacity_factor)),
        page_tokens=dep.page_size_tokens,
        max_context=dep.effective_max_context,
        chunked_prefill=opts.chunked_prefill,
        prefix_caching=opts.prefix_caching,
        admission=dep.admission if ENGINE_POLICY[dep.engine.name] == "prefill_first" else None,
        # SGLang turns mixed chunks off under EAGLE speculative decoding, which its MTP is
        # (server_args: "Mixed chunked prefill is disabled because of using eagle ...")
        mixed_chunk=dep.mixed_chunk and not dep.mtp.enabled,
        max_prefill_tokens=(
            dep.max_prefill_tokens * ranks if dep.max_prefill_tokens is not None else None
        ),
    )
    return EngineReplica(model, config, track_tokens=track_tokens)


def simulate_deployment(
    dep: Deployment,
    workload: Workload,
    options: SimOptions | None = None,
    *,
    params: StepParams | None = None,
    decode: Deployment | None = None,
    record: bool = False,
) -> SimResult:
    """Simulate `workload` on the deployment's replicas (or its xPyD disaggregation)."""
    opts = options or SimOptions()
    if opts.num_prefill:
        dec = decode or dep
        prefill = [build_replica(dep, opts, params=params) for _ in range(opts.num_prefill)]
        decoders = [build_replica(dec, opts, params=params) for _ in range(opts.num_decode)]
        gpu = dep.gpu
        bw = gpu.network_bw_bytes_per_s
        # every GPU of the smaller side sends or receives its share in parallel
        lanes = min(dep.num_gpus, dec.num_gpus)
        kv_token = kv_bytes_per_token(dep.model, dep.kv_layout)
        dis = Disaggregation(opts.num_prefill, opts.num_decode, kv_token, bw * lanes)
        gpus = dep.num_gpus * opts.num_prefill + dec.num_gpus * opts.num_decode
        return simulate(
            prefill,
            workload,
            routing=opts.routing,
            balance=opts.balance,
            num_gpus=gpus,
            decode_replicas=decoders,
            disaggregation=dis,
        )
    replicas = [build_replica(dep, opts, params=params) for _ in range(opts.num_replicas)]
    return simulate(
        replicas,
        workload,
        routing=opts.routing,
        balance=opts.balance,
        num_gpus=dep.num_gpus * opts.num_replicas,
        record=record,
    )
