"""Step-time model: how long one engine step takes for a batch on a deployment.

Every operation is priced from the model spec and the deployment: its FLOPs and the bytes it
must move per GPU, then `max(compute time, memory time)` (a roofline per operation):

  non-expert GEMMs   attention projections, indexer, dense MLPs, shared experts (M = tokens
                     per attention-DP rank)
  routed experts     the expected number of distinct experts the batch touches per EP rank,
                     1 - (1 - k/E)^T of them, each read once (M = tokens per touched expert)
  lm_head            only rows that need logits (decode tokens, last prefill token)
  attention          prefill: compute (dense over the context, or DSA top-k plus the indexer
                     over the whole context); decode: reading the KV cache (latent per token for
                     MLA, top-k tokens plus every indexer key for DSA)
  communication      TP all-reduce per layer, EP all-to-all dispatch (fp8) and combine (bf16),
                     over NVLink inside a node or the network across nodes, PP sends
  overheads          per step (scheduler, launch) and per running sequence (sampling, I/O)

Efficiencies come from a `StepParams` (fitted by calibration); GEMM compute efficiency falls
at small M as `eff * M / (M + m_half)`. `speed_of_light()` drops every loss: full peak
throughput and bandwidth, no overheads, no latency. Multi-token prediction: each decode step
verifies k drafts per sequence (k+1 query tokens), drafts them with k passes of the MTP layer,
and emits on average 1 + a + ... + a^k tokens for per-token acceptance a.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from moerun.core.deploy.deployment import FORMAT_COMPUTE, Deployment
from moerun.core.model.flops import attention_coeff, indexer_coeff
from moerun.core.model.kv_cache import attention_bytes_per_layer, indexer_bytes_per_layer
from moerun.core.model.weights import keep_list, tensor_bytes

ACT_BYTES = 2  # bf16 activations
DISPATCH_BYTES = 1  # fp8 dispatch in DeepEP-style all-to-all


@dataclass(frozen=True, slots=True)
class StepParams:
    """The efficiency parameters of the step-time model (what calibration fits)."""

    gemm_efficiency: float = 0.6
    mem_efficiency: float = 0.75
    attn_efficiency: float = 0.4
    comm_efficiency: float = 0.7
    gemm_m_half: float = 64.0
    step_overhead_s: float = 0.004
    seq_overhead_s: float = 2e-5
    collective_latency_s: float = 1.5e-5

    @classmethod
    def speed_of_light(cls) -> StepParams:
        """No losses: peak compute, peak bandwidth, no overheads or latencies."""
        return cls(1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0)


FITTED_PARAMS = (
    "gemm_efficiency",
    "mem_efficiency",
    "attn_efficiency",
    "step_overhead_s",
    "seq_overhead_s",
)


@dataclass(frozen=True, slots=True)
class StepBatch:
    """What one step computes. Sums over tokens are of their positions (1-based context)."""

    prefill_tokens: float = 0.0
    prefill_seqs: float = 0.0
    prefill_attended: float = 0.0  # sum over new tokens of min(position, top-k)
    prefill_context: float = 0.0  # sum over new tokens of position (the indexer's work)
    prefill_logits: float = 0.0  # prefills that finish this step (they sample a token)
    decode_seqs: float = 0.0
    decode_attended: float = 0.0  # sum over decoding sequences of min(context, top-k)
    decode_context: float = 0.0  # sum over decoding sequences of context


@dataclass(frozen=True, slots=True)
class _Shape:
    """Per-GPU constants of one deployment, computed once."""

    tp: int
    dp: int
    pp: int
    ep: int
    moe_group: int
    mtp_tokens: int
    num_layers: int
    num_moe_layers: int
    num_mtp_layers: int
    hidden: int
    gemm_peak: float
    attn_peak: float
    index_peak: float  # the DSA indexer scores keys in fp8 where the GPU has fp8 tensor cores
    mem_bw: float
    tp_bw: float
    ep_bw: float
    pp_bw: float
    nonexpert_bytes: float  # per GPU, all stages in sequence
    nonexpert_params_rank: float  # parameters a rank's tokens pass through, per GPU
    head_bytes: float
    head_params_rank: float
    num_experts: int
    experts_per_tok: int
    expert_bytes: float  # one routed expert of one layer
    expert_params: float
    attn_prefill_coeff: float  # FLOPs per attended token, all layers
    attn_decode_coeff: float
    indexer_coeff: float
    kv_attn_bytes: float  # bytes read per attended token, all layers, per GPU
    kv_index_bytes: float  # bytes read per context token for the indexer, all layers


def _shape(dep: Deployment) -> _Shape:
    spec, par, gpu = dep.model, dep.parallel, dep.gpu
    keep = keep_list(spec)
    nonexpert_bytes = nonexpert_params = head_bytes = head_params = 0.0
    expert_bytes = expert_params = 0.0
    moe_layers = set()
    for t in spec.tensors:
        if t.mtp or t.component == "embedding":
            continue
        b = float(tensor_bytes(t, dep.weights, keep))
        n = float(t.numel) if t.is_linear else 0.0
        if t.component == "head":
            head_bytes += b / par.tp
            head_params += n / par.tp
        elif t.shard == "expert":
            expert_bytes += b / t.count
            expert_params += n / t.count
            if t.layer is not None:
                moe_layers.add(t.layer)
        else:
            split = {"vocab": par.tp, "attn": par.tp, "dense": par.tp}.get(t.shard, 1)
            if t.shard == "kv_heads":
                split = min(par.tp, max(1, spec.num_kv_heads))
            nonexpert_bytes += b / split
            nonexpert_params += n / split
    num_moe = max(1, len(moe_layers)) if spec.moe is not None else 0
    # expert tensors are stored per (layer, projection) group: average one expert of one layer
    if num_moe:
        expert_bytes /= num_moe
        expert_params /= num_moe
    layout = dep.kv_layout
    kv_heads = max(1, spec.num_kv_heads // par.tp) if spec.mla is None else None
    attn_b = attention_bytes_per_layer(spec, layout, kv_heads)
    idx_layers = spec.indexer.num_indexer_layers if spec.indexer is not None else 0
    out_bw = gpu.network_bw_bytes_per_s
    up_bw = gpu.scale_up_bw_bytes_per_s or out_bw
    node = gpu.gpus_per_node
    compute = FORMAT_COMPUTE[dep.weights]
    gemm_tflops = gpu.dense_tflops.get(compute) or gpu.dense_tflops.get("bf16", 1.0)
    moe = spec.moe
    return _Shape(
        tp=par.tp,
        dp=par.dp,
        pp=par.pp,
        ep=par.ep,
        moe_group=par.moe_group,
        mtp_tokens=dep.mtp_tokens,
        num_layers=spec.num_layers,
        num_moe_layers=num_moe,
        num_mtp_layers=max(1, spec.num_mtp_layers),
        hidden=spec.hidden_size,
        gemm_peak=gemm_tflops * 1e12,
        attn_peak=gpu.dense_tflops.get("bf16", gemm_tflops) * 1e12,
        index_peak=(gpu.dense_tflops.get("fp8") or gpu.dense_tflops.get("bf16", gemm_tflops))
        * 1e12,
        mem_bw=gpu.mem_bw_bytes_per_s,
        tp_bw=up_bw if par.tp <= node else out_bw,
        ep_bw=up_bw if par.moe_group <= node else out_bw,
        pp_bw=out_bw,
        nonexpert_bytes=nonexpert_bytes,
        nonexpert_params_rank=nonexpert_params,
        head_bytes=head_bytes,
        head_params_rank=head_params,
        num_experts=moe.num_routed_experts if moe else 0,
        experts_per_tok=moe.num_experts_per_tok if moe else 0,
        expert_bytes=expert_bytes,
        expert_params=expert_params,
        attn_prefill_coeff=attention_coeff(spec, "prefill") * spec.num_layers / par.tp,
        attn_decode_coeff=attention_coeff(spec, "decode") * spec.num_layers / par.tp,
        indexer_coeff=float(indexer_coeff(spec)),
        kv_attn_bytes=float(attn_b * spec.num_layers),
        kv_index_bytes=float(indexer_bytes_per_layer(spec) * idx_layers),
    )


def accepted_tokens_per_step(mtp_tokens: int, acceptance: float) -> float:
    """Expected tokens a decode step emits per sequence: 1 + a + a^2 + ... + a^k."""
    return sum(acceptance**i for i in range(mtp_tokens + 1))


class StepModel:
    """Prices engine steps for one deployment with given efficiency parameters."""

    def __init__(
        self,
        dep: Deployment,
        params: StepParams | None = None,
        *,
        mtp_acceptance: float = 0.0,
    ) -> None:
        self.dep = dep
        self.params = params or StepParams()
        self.mtp_acceptance = mtp_acceptance if dep.mtp_tokens else 0.0
        self.shape = _shape(dep)
        self.tokens_per_decode_step = accepted_tokens_per_step(dep.mtp_tokens, self.mtp_acceptance)

    def with_params(self, params: StepParams) -> StepModel:
        """The same deployment priced with other parameters."""
        clone = object.__new__(StepModel)
        clone.__dict__.update(self.__dict__)
        clone.params = params
        return clone

    def with_deployment(self, dep: Deployment, mtp_acceptance: float) -> StepModel:
        """This model for `dep`, a deployment with the same model, GPU, layout, weights and
        KV layout that may differ in MTP drafts, memory fraction or context; the per-GPU shape
        is reused rather than re-walked (the MTP layer enters only through its pass count)."""
        old = self.dep
        assert (dep.model.name, dep.gpu.id, dep.parallel, dep.weights, dep.kv_layout) == (
            old.model.name,
            old.gpu.id,
            old.parallel,
            old.weights,
            old.kv_layout,
        ), "with_deployment only changes MTP, memory or context"
        clone = self.with_params(self.params)
        clone.dep = dep
        clone.shape = replace(self.shape, mtp_tokens=dep.mtp_tokens)
        clone.mtp_acceptance = mtp_acceptance if dep.mtp_tokens else 0.0
        clone.tokens_per_decode_step = accepted_tokens_per_step(
            dep.mtp_tokens, clone.mtp_acceptance
        )
        return clone

    def speed_of_light(self) -> StepModel:
        """The same deployment with every loss removed."""
        return self.with_params(StepParams.speed_of_light())

    def step_time_s(self, b: StepBatch) -> float:
        """Seconds for one step of batch `b`."""
        return float(
            step_time(
                self.shape,
                self.params,
                b.prefill_tokens,
                b.prefill_seqs,
                b.prefill_attended,
                b.prefill_context,
                b.prefill_logits,
                b.decode_seqs,
                b.decode_attended,
                b.decode_context,
                max,
            )
        )


def step_time(
    s: _Shape,
    p: StepParams,
    prefill_tokens: Any,
    prefill_seqs: Any,
    prefill_attended: Any,
    prefill_context: Any,
    prefill_logits: Any,
    decode_seqs: Any,
    decode_attended: Any,
    decode_context: Any,
    mx: Callable[[Any, Any], Any],
) -> Any:
    """The step time, written once for floats (`mx=max`) and numpy arrays (`np.maximum`)."""
    k = s.mtp_tokens
    verify = decode_seqs * (k + 1)
    tokens = prefill_tokens + verify
    rank_tokens = tokens / s.dp
    layers = _layers_time(s, p, tokens, mx)
    logits = (verify + prefill_logits) / s.dp
    head = _gemm(p, 2 * s.head_params_rank * logits, s.head_bytes, logits, s, mx)
    core_flops = (
        s.attn_prefill_coeff * prefill_attended + s.attn_decode_coeff * decode_attended * (k + 1)
    ) / s.dp
    index_flops = s.indexer_coeff * (prefill_context + decode_context * (k + 1)) / s.dp
    attn_compute = (core_flops / s.attn_peak + index_flops / s.index_peak) / p.attn_efficiency
    attn_bytes = (s.kv_attn_bytes * decode_attended + s.kv_index_bytes * decode_context) / s.dp
    attn = mx(attn_compute, attn_bytes / (s.mem_bw * p.mem_efficiency))
    comm = _comm_time(s, p, rank_tokens)
    total = layers + head + attn + comm
    if k:
        # k sequential passes of the MTP layer over the decoding sequences, each with lm_head
        draft_layer = _layers_time(s, p, decode_seqs, mx) * s.num_mtp_layers / s.num_layers
        draft_head = _gemm(
            p, 2 * s.head_params_rank * decode_seqs / s.dp, s.head_bytes, decode_seqs / s.dp, s, mx
        )
        total = total + k * (draft_layer + draft_head)
    return total + p.step_overhead_s + p.seq_overhead_s * (decode_seqs + prefill_seqs)


def _gemm(
    p: StepParams, flops: Any, nbytes: Any, m: Any, s: _Shape, mx: Callable[[Any, Any], Any]
) -> Any:
    eff = p.gemm_efficiency * m / (m + p.gemm_m_half + 1e-12)
    return mx(flops / (s.gemm_peak * eff + 1e-30), nbytes / (s.mem_bw * p.mem_efficiency))


def _layers_time(s: _Shape, p: StepParams, tokens: Any, mx: Callable[[Any, Any], Any]) -> Any:
    """Non-expert GEMMs and routed experts for `tokens` tokens over the whole replica."""
    rank_tokens = tokens / s.dp
    dense = _gemm(
        p, 2 * s.nonexpert_params_rank * rank_tokens, s.nonexpert_bytes, rank_tokens, s, mx
    )
    if not s.num_experts:
        return dense
    e, kk = s.num_experts, s.experts_per_tok
    touched_frac = 1 - (1 - kk / e) ** tokens
    local_experts = e / s.ep
    moe_tp = s.moe_group / s.ep
    touched = local_experts * touched_frac
    expert_bytes = s.num_moe_layers * touched * s.expert_bytes / moe_tp
    expert_flops = s.num_moe_layers * tokens * kk * 2 * s.expert_params / s.moe_group
    m = tokens * kk / (e * touched_frac + 1e-12)
    return dense + _gemm(p, expert_flops, expert_bytes, m, s, mx)


def _comm_time(s: _Shape, p: StepParams, rank_tokens: Any) -> Any:
    act = rank_tokens * s.hidden * ACT_BYTES
    lat = p.collective_latency_s
    total: Any = 0.0
    if s.tp > 1:
        ring = 2 * (s.tp - 1) / s.tp
        # one all-reduce after attention in every layer, one after each dense MLP
        n_ar = s.num_layers + (s.num_layers - s.num_moe_layers)
        total = total + n_ar * (ring * act / (s.tp_bw * p.comm_efficiency) + lat)
    if s.num_experts and s.moe_group > 1:
        if s.ep > 1:
            per_gpu = rank_tokens * s.dp / s.moe_group * s.experts_per_tok * s.hidden
            frac = (s.ep - 1) / s.ep
            a2a = per_gpu * frac * (DISPATCH_BYTES + ACT_BYTES) / (s.ep_bw * p.comm_efficiency)
            total = total + s.num_moe_layers * (a2a + 2 * lat)
        else:
            ring = 2 * (s.moe_group - 1) / s.moe_group
            total = total + s.num_moe_layers * (ring * act / (s.ep_bw * p.comm_efficiency) + lat)
    if s.pp > 1:
        total = total + (s.pp - 1) * (act * s.dp / (s.pp_bw * p.comm_efficiency) + lat)
    return total


def params_from_dict(values: dict[str, float], base: StepParams | None = None) -> StepParams:
    """A StepParams with `values` replacing fields of `base` (defaults when None)."""
    return replace(base or StepParams(), **values)
