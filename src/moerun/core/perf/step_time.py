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

Where the GPU and engine have measured kernel tables (`StepParams.kernels`, NVIDIA's
silicon measurements shipped in aiconfigurator-core), each operation is priced from its table
instead (see `kernel_plan.py`): interpolated in its shape, exact on the table's points; what no
table covers keeps the roofline. `step_time_parts` says how much of a step came from tables.
Efficiencies come from a `StepParams` (fitted by calibration); GEMM compute efficiency falls
at small M as `eff * M / (M + m_half)`. Per-sequence overhead is paid per DP rank (each rank's
scheduler handles its own sequences, in parallel with the others). `speed_of_light()` drops
every loss and the tables: full peak throughput and bandwidth, no overheads, no latency.
Multi-token prediction: each decode step verifies k drafts per sequence (k+1 query tokens),
drafts them with k passes of the MTP layer, and emits on average 1 + a + ... + a^k tokens
for per-token acceptance a.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from moerun.core.deploy.deployment import FORMAT_COMPUTE, Deployment
from moerun.core.memo import IdentityMemo
from moerun.core.model.flops import attention_coeff, indexer_coeff
from moerun.core.model.kv_cache import attention_bytes_per_layer, indexer_bytes_per_layer
from moerun.core.model.model_spec import ModelSpec
from moerun.core.model.weights import keep_list, tensor_bytes
from moerun.core.perf.kernel_plan import KernelPlan, build_plan
from moerun.core.perf.tables import Curve, Grid, KernelTables

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
    # what a client waits per request outside the engine's steps (HTTP, tokenizing, the
    # scheduler's IPC, detokenizing): a constant delay on every token it receives, so it adds
    # to TTFT and end-to-end latency, not to TPOT or to the GPU's time
    request_overhead_s: float = 0.0
    # measured kernel time x this factor: the engine's kernels in end-to-end runs against the
    # tables' isolated timings (fitted per GPU and engine; 1 when unfitted)
    kernel_scale: float = 1.0
    # the GPU and engine's measured tables; None prices every operation by the roofline
    kernels: KernelTables | None = field(default=None, compare=False, repr=False)

    @classmethod
    def speed_of_light(cls) -> StepParams:
        """No losses: peak compute, peak bandwidth, no overheads or latencies, no tables."""
        return cls(
            gemm_efficiency=1.0,
            mem_efficiency=1.0,
            attn_efficiency=1.0,
            comm_efficiency=1.0,
            gemm_m_half=0.0,
            step_overhead_s=0.0,
            seq_overhead_s=0.0,
            collective_latency_s=0.0,
            request_overhead_s=0.0,
        )

    def values(self) -> dict[str, float]:
        """The numeric parameters by name (what a profile stores)."""
        return {f: float(getattr(self, f)) for f in self.__dataclass_fields__ if f != "kernels"}


FITTED_PARAMS = (
    "gemm_efficiency",
    "mem_efficiency",
    "attn_efficiency",
    "step_overhead_s",
    "seq_overhead_s",
    "request_overhead_s",
    "kernel_scale",
)


@dataclass(frozen=True, slots=True)
class StepBatch:
    """What one step computes. Sums over tokens are of their positions (1-based context).

    Each field is a float for one step, or a numpy array of many steps priced at once.
    """

    prefill_tokens: Any = 0.0
    prefill_seqs: Any = 0.0
    prefill_attended: Any = 0.0  # sum over new tokens of min(position, top-k)
    prefill_context: Any = 0.0  # sum over new tokens of position (the indexer's work)
    prefill_logits: Any = 0.0  # prefills that finish this step (they sample a token)
    decode_seqs: Any = 0.0
    decode_attended: Any = 0.0  # sum over decoding sequences of min(context, top-k)
    decode_context: Any = 0.0  # sum over decoding sequences of context


@dataclass(frozen=True, slots=True)
class _Shape:
    """Per-GPU constants of one deployment, computed once."""

    tp: int
    dp: int
    pp: int
    ep: int
    moe_group: int
    num_draft_tokens: int
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
    plan: KernelPlan | None = None  # measured curves (used while the params carry tables)


@dataclass(frozen=True, slots=True)
class _WeightSums:
    """The weights one GPU holds and passes tokens through, by kind (bytes and parameters)."""

    nonexpert_bytes: float
    nonexpert_params: float
    head_bytes: float
    head_params: float
    expert_bytes: float  # one routed expert of one layer
    expert_params: float
    num_moe_layers: int


_WEIGHT_SUMS: IdentityMemo[_WeightSums] = IdentityMemo()


def _weight_sums(spec: ModelSpec, weights: str, tp: int) -> _WeightSums:
    """`spec`'s weights per GPU in format `weights` at tensor parallelism `tp` (walked once
    per spec, format and TP: a plan prices hundreds of layouts of the same model)."""
    return _WEIGHT_SUMS.get((spec,), (weights, tp), lambda: _walk_weights(spec, weights, tp))


def _walk_weights(spec: ModelSpec, weights: str, tp: int) -> _WeightSums:
    arch = spec.arch
    keep = keep_list(spec)
    nonexpert_bytes = nonexpert_params = head_bytes = head_params = 0.0
    expert_bytes = expert_params = 0.0
    moe_layers = set()
    for t in spec.tensors:
        if t.mtp or t.component == "embedding":
            continue
        b = float(tensor_bytes(t, weights, keep))
        n = float(t.numel) if t.is_linear else 0.0
        if t.component == "head":
            head_bytes += b / tp
            head_params += n / tp
        elif t.shard == "expert":
            expert_bytes += b / t.count
            expert_params += n / t.count
            if t.layer is not None:
                moe_layers.add(t.layer)
        else:
            split = {"vocab": tp, "attn": tp, "dense": tp}.get(t.shard, 1)
            if t.shard == "kv_heads":
                split = min(tp, max(1, arch.num_kv_heads))
            nonexpert_bytes += b / split
            nonexpert_params += n / split
    num_moe = max(1, len(moe_layers)) if arch.moe is not None else 0
    # expert tensors are stored per (layer, projection) group: average one expert of one layer
    if num_moe:
        expert_bytes /= num_moe
        expert_params /= num_moe
    return _WeightSums(
        nonexpert_bytes,
        nonexpert_params,
        head_bytes,
        head_params,
        expert_bytes,
        expert_params,
        num_moe,
    )


def _shape(dep: Deployment, kernels: KernelTables | None) -> _Shape:
    spec, par, gpu = dep.model, dep.parallel, dep.gpu
    arch = spec.arch
    w = _weight_sums(spec, dep.weights, par.tp)
    layout = dep.kv_layout
    kv_heads = max(1, arch.num_kv_heads // par.tp) if arch.mla is None else None
    attn_b = attention_bytes_per_layer(spec, layout, kv_heads)
    idx_layers = arch.indexer.num_indexer_layers if arch.indexer is not None else 0
    out_bw = gpu.network_bw_bytes_per_s
    up_bw = gpu.scale_up_bw_bytes_per_s or out_bw
    # collectives stay on NVLink within the scale-up domain (72 GPUs on GB200 NVL72)
    node = max(gpu.gpus_per_node, gpu.scale_up_domain_gpus or 0)
    compute = FORMAT_COMPUTE[dep.weights]
    gemm_tflops = gpu.dense_tflops.get(compute) or gpu.dense_tflops.get("bf16", 1.0)
    moe = arch.moe
    return _Shape(
        tp=par.tp,
        dp=par.dp,
        pp=par.pp,
        ep=par.ep,
        moe_group=par.moe_group,
        num_draft_tokens=dep.mtp.num_draft_tokens,
        num_layers=arch.num_layers,
        num_moe_layers=w.num_moe_layers,
        num_mtp_layers=max(1, arch.num_mtp_layers),
        hidden=arch.hidden_size,
        gemm_peak=gemm_tflops * 1e12,
        attn_peak=gpu.dense_tflops.get("bf16", gemm_tflops) * 1e12,
        index_peak=(gpu.dense_tflops.get("fp8") or gpu.dense_tflops.get("bf16", gemm_tflops))
        * 1e12,
        mem_bw=gpu.mem_bw_bytes_per_s,
        tp_bw=up_bw if par.tp <= node else out_bw,
        ep_bw=up_bw if par.moe_group <= node else out_bw,
        pp_bw=out_bw,
        nonexpert_bytes=w.nonexpert_bytes,
        nonexpert_params_rank=w.nonexpert_params,
        head_bytes=w.head_bytes,
        head_params_rank=w.head_params,
        num_experts=moe.num_routed_experts if moe else 0,
        experts_per_tok=moe.num_experts_per_tok if moe else 0,
        expert_bytes=w.expert_bytes,
        expert_params=w.expert_params,
        attn_prefill_coeff=attention_coeff(spec, "prefill") * arch.num_layers / par.tp,
        attn_decode_coeff=attention_coeff(spec, "decode") * arch.num_layers / par.tp,
        indexer_coeff=float(indexer_coeff(spec)),
        kv_attn_bytes=float(attn_b * arch.num_layers),
        kv_index_bytes=float(indexer_bytes_per_layer(spec) * idx_layers),
        plan=build_plan(dep, kernels) if kernels is not None else None,
    )


@dataclass(frozen=True, slots=True, eq=False)
class StepModel:
    """Prices engine steps for one deployment with given parameters (change with `replace`).

    MTP drafts and their acceptance come with the deployment (`dep.mtp`); `shape` is computed
    from the deployment unless given.
    """

    dep: Deployment
    params: StepParams = field(default_factory=StepParams)
    shape: _Shape = field(default=None, repr=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.params is None:
            object.__setattr__(self, "params", StepParams())
        if self.shape is None:
            object.__setattr__(self, "shape", _shape(self.dep, self.params.kernels))
        else:
            assert self.shape.num_draft_tokens == self.dep.mtp.num_draft_tokens, (
                "shape of another deployment"
            )

    @property
    def tokens_per_decode_step(self) -> float:
        """Tokens a decode step emits per sequence on average."""
        return self.dep.mtp.tokens_per_step

    def with_params(self, params: StepParams) -> StepModel:
        """The same deployment priced with other parameters."""
        if params.kernels is not None and params.kernels is not self.params.kernels:
            # other tables (another engine): only the measured curves change
            shape = replace(self.shape, plan=build_plan(self.dep, params.kernels))
            return replace(self, params=params, shape=shape)
        return replace(self, params=params)

    def with_deployment(self, dep: Deployment) -> StepModel:
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
        shape = replace(self.shape, num_draft_tokens=dep.mtp.num_draft_tokens)
        return replace(self, dep=dep, shape=shape)

    def speed_of_light(self) -> StepModel:
        """The same deployment with every loss removed (and no tables: the pure roofline)."""
        return self.with_params(StepParams.speed_of_light())

    def step_time_s(self, b: StepBatch) -> float:
        """Seconds for one step of batch `b`."""
        plan = self.shape.plan if self.params.kernels is not None else None
        if plan is None:
            return float(_roofline_step(self.shape, self.params, b, max))
        return _table_step_scalar(self.shape, self.params, plan, b)

    def kernel_coverage(self, b: StepBatch) -> float:
        """The share of batch `b`'s step time priced from measured kernel tables (0 to 1)."""
        total, measured = step_time_parts(self.shape, self.params, b, max)
        return float(measured / total) if total > 0 else 0.0

    def run_coverage(self, batches: list[StepBatch]) -> float:
        """The share of the summed time of `batches` priced from measured tables."""
        if not batches:
            return 0.0
        arrays = {
            f: np.array([getattr(b, f) for b in batches], dtype=float)
            for f in StepBatch.__dataclass_fields__
        }
        total, measured = step_time_parts(self.shape, self.params, StepBatch(**arrays), np.maximum)
        t = float(np.sum(total))
        return float(np.sum(measured)) / t if t > 0 else 0.0


def step_time(s: _Shape, p: StepParams, b: StepBatch, mx: Callable[[Any, Any], Any]) -> Any:
    """The step time, written once for floats (`mx=max`) and numpy arrays (`np.maximum`)."""
    return step_time_parts(s, p, b, mx, coverage=False)[0]


def _where(x: Any, y: Any) -> Any:
    """y where x > 0, else 0 (floats or arrays)."""
    if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
        return np.where(x > 0, y, 0.0)
    return y if x > 0 else 0.0


def _pick(cond: Any, a: Any, b: Any) -> Any:
    """a where cond, else b (a bool, or arrays)."""
    if isinstance(cond, np.ndarray):
        return np.where(cond, a, b)
    return a if cond else b


def _curve(c: Curve, x: Any, coverage: bool = True) -> tuple[Any, Any]:
    """(time, time inside the measured range) of a curve at x (0 where x is 0); without
    `coverage` the second is 0 (not computed)."""
    t = _where(x, c(x))
    return t, t * c.covered(x) if coverage else 0.0


def _grid(g: Grid, n: Any, size: Any, coverage: bool = True) -> tuple[Any, Any]:
    t = _where(n, g(n, size))
    return t, t * g.covered(n, size) if coverage else 0.0


def _prompt_length(tokens: Any, positions: Any) -> Any:
    """The fresh prompt length whose attention matches a chunk's (tables time whole prompts).

    A chunk of c tokens after P cached ones attends over positions summing to c(P + c/2); a
    fresh prompt of L tokens over L^2/2. The table is read at L = sqrt(2 x positions) (at
    least the chunk) and its time scaled to the chunk's c tokens (c / L of it).
    """
    if isinstance(tokens, np.ndarray) or isinstance(positions, np.ndarray):
        return np.maximum(tokens, np.sqrt(2.0 * np.maximum(positions, 0.0)))
    return max(tokens, (2.0 * max(positions, 0.0)) ** 0.5)


def _ratio(a: Any, b: Any) -> Any:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.divide(a, b, out=np.zeros_like(np.asarray(a, dtype=float) + b), where=b > 0)
    return a / b if b > 0 else 0.0


def step_time_parts(
    s: _Shape, p: StepParams, b: StepBatch, mx: Callable[[Any, Any], Any], coverage: bool = True
) -> tuple[Any, Any]:
    """(step time, the part of it priced from measured tables inside their range; 0 unless
    `coverage`)."""
    plan = s.plan if p.kernels is not None else None
    if plan is None:
        return _roofline_step(s, p, b, mx), 0.0
    k = s.num_draft_tokens
    verify = b.decode_seqs * (k + 1)
    tokens = b.prefill_tokens + verify
    rank_tokens = tokens / s.dp
    measured: Any = 0.0
    total: Any = 0.0

    def add(part: tuple[Any, Any]) -> None:
        nonlocal measured, total
        total = total + part[0] * p.kernel_scale
        measured = measured + part[1] * p.kernel_scale

    # DeepEP runs its normal mode (and prices) for a step in which any rank prefills
    extend = b.prefill_tokens > 0
    layers, layers_m = _table_layers(s, p, plan, tokens, mx, coverage, extend)
    add((layers, layers_m))
    # attention: decoding sequences (k + 1 queries each under MTP) and prompts, per DP rank
    dec_ctx = _ratio(b.decode_context, b.decode_seqs)
    if plan.attn_decode is not None:
        add(_grid(plan.attn_decode, verify / s.dp, dec_ctx, coverage))
    else:
        total = total + _roofline_attention(s, p, b, mx, decode=True)
    if plan.attn_prefill is not None:
        per_seq = _ratio(b.prefill_tokens, b.prefill_seqs)
        eff = _prompt_length(per_seq, _ratio(b.prefill_context, b.prefill_seqs))
        t, m = _grid(plan.attn_prefill, b.prefill_seqs / s.dp, eff, coverage)
        share = _ratio(per_seq, eff)
        # in a step that also decodes, the prompt shares the module's projections and
        # launches (the table's time for its shortest prompt): only the extra work is added
        extra = mx(t * share - _where(b.decode_seqs, plan.attn_prefill_fixed_s), 0.0)
        add((extra, _where(m, extra)))
    else:
        total = total + _roofline_attention(s, p, b, mx, decode=False)
    logits = (verify + b.prefill_logits) / s.dp
    if plan.head is not None:
        add(_curve(plan.head, logits, coverage))
    else:
        total = total + _gemm(p, 2 * s.head_params_rank * logits, s.head_bytes, logits, s, mx)
    comm, comm_m = _table_comm(s, p, plan, rank_tokens, coverage, extend)
    total, measured = total + comm, measured + comm_m
    if k:
        # k sequential passes of the MTP layer over the decoding sequences, each with lm_head
        rank_dec = b.decode_seqs / s.dp
        draft, draft_m = _table_layers(s, p, plan, b.decode_seqs, mx, coverage, extend)
        if plan.attn_decode is not None:
            a, a_m = _grid(plan.attn_decode, rank_dec, dec_ctx, coverage)
            draft, draft_m = draft + a, draft_m + a_m
        frac = s.num_mtp_layers / s.num_layers
        add((k * draft * frac, k * draft_m * frac))
        if plan.head is not None:
            h, h_m = _curve(plan.head, rank_dec, coverage)
            add((k * h, k * h_m))
        else:
            total = total + k * _gemm(
                p, 2 * s.head_params_rank * rank_dec, s.head_bytes, rank_dec, s, mx
            )
    total = total + p.step_overhead_s + p.seq_overhead_s * (b.decode_seqs + b.prefill_seqs) / s.dp
    return total, measured


def _table_step_scalar(s: _Shape, p: StepParams, plan: KernelPlan, b: StepBatch) -> float:
    """`step_time_parts(...)[0]` for one step, without the coverage bookkeeping (the
    simulator's hot path; a test checks the two agree)."""
    k = s.num_draft_tokens
    ks = p.kernel_scale
    dp = s.dp
    verify = b.decode_seqs * (k + 1)
    tokens = b.prefill_tokens + verify
    extend = b.prefill_tokens > 0
    total = _layers_scalar(s, p, plan, tokens, extend) * ks
    if b.decode_seqs > 0:
        ctx = b.decode_context / b.decode_seqs
        if plan.attn_decode is not None:
            total += plan.attn_decode.at(verify / dp, ctx) * ks
        else:
            total += _roofline_attention(s, p, b, max, decode=True)
    if b.prefill_seqs > 0:
        if plan.attn_prefill is not None:
            per_seq = b.prefill_tokens / b.prefill_seqs
            eff = _prompt_length(per_seq, b.prefill_context / b.prefill_seqs)
            t = plan.attn_prefill.at(b.prefill_seqs / dp, eff) * per_seq / eff
            if b.decode_seqs > 0:
                t = max(t - plan.attn_prefill_fixed_s, 0.0)
            total += t * ks
        else:
            total += _roofline_attention(s, p, b, max, decode=False)
    logits = (verify + b.prefill_logits) / dp
    if logits > 0:
        if plan.head is not None:
            total += plan.head.at(logits) * ks
        else:
            total += _gemm(p, 2 * s.head_params_rank * logits, s.head_bytes, logits, s, max)
    if tokens > 0:
        total += _comm_scalar(s, p, plan, tokens / dp, extend)
    if k and b.decode_seqs > 0:
        rank_dec = b.decode_seqs / dp
        draft = _layers_scalar(s, p, plan, b.decode_seqs, extend)
        if plan.attn_decode is not None:
            draft += plan.attn_decode.at(rank_dec, b.decode_context / b.decode_seqs)
        total += k * draft * ks * s.num_mtp_layers / s.num_layers
        if plan.head is not None:
            total += k * plan.head.at(rank_dec) * ks
        else:
            total += k * _gemm(p, 2 * s.head_params_rank * rank_dec, s.head_bytes, rank_dec, s, max)
    overhead = p.step_overhead_s + p.seq_overhead_s * (b.decode_seqs + b.prefill_seqs) / dp
    return float(total + overhead)


def _layers_scalar(
    s: _Shape, p: StepParams, plan: KernelPlan, tokens: float, extend: bool = False
) -> float:
    """`_table_layers(...)[0]` for one step."""
    if tokens <= 0:
        return 0.0
    rank_tokens = tokens / s.dp
    total = plan.dense.at(rank_tokens) if plan.dense is not None else 0.0
    if plan.fallback_params:
        total += (
            _gemm(
                p, 2 * plan.fallback_params * rank_tokens, plan.fallback_bytes, rank_tokens, s, max
            )
            / p.kernel_scale
        )
    if s.num_experts:
        moe = plan.moe_prefill if extend and plan.moe_prefill is not None else plan.moe
        if moe is not None:
            total += moe.at(tokens * s.moe_group / (s.tp * s.dp))
        else:
            total += _experts_time(s, p, tokens, max) / p.kernel_scale
    return float(total)


def _table_layers(
    s: _Shape,
    p: StepParams,
    plan: KernelPlan,
    tokens: Any,
    mx: Callable[[Any, Any], Any],
    coverage: bool = True,
    extend: Any = False,
) -> tuple[Any, Any]:
    """Non-expert GEMMs and routed experts from the tables (roofline for what they miss),
    before the kernel scale; (time, measured part); `extend`: the step prefills (a bool, or
    an array of them), which behind DeepEP selects its normal mode's tables."""
    rank_tokens = tokens / s.dp
    total: Any = 0.0
    measured: Any = 0.0
    if plan.dense is not None:
        t, m = _curve(plan.dense, rank_tokens, coverage)
        total, measured = total + t, measured + m
    if plan.fallback_params:
        fb = _gemm(
            p, 2 * plan.fallback_params * rank_tokens, plan.fallback_bytes, rank_tokens, s, mx
        )
        # roofline time is not scaled by kernel_scale: divide it back out
        total = total + fb / p.kernel_scale
    if s.num_experts:
        if plan.moe is not None:
            group_tokens = tokens * s.moe_group / (s.tp * s.dp)
            t, m = _curve(plan.moe, group_tokens, coverage)
            if plan.moe_prefill is not None:
                te, me = _curve(plan.moe_prefill, group_tokens, coverage)
                t, m = _pick(extend, te, t), _pick(extend, me, m)
            total, measured = total + t, measured + m
        else:
            total = total + _experts_time(s, p, tokens, mx) / p.kernel_scale
    return total, measured


def _table_comm(
    s: _Shape,
    p: StepParams,
    plan: KernelPlan,
    rank_tokens: Any,
    coverage: bool = True,
    extend: Any = False,
) -> tuple[Any, Any]:
    """TP all-reduce and the MoE layers' communication from the tables where measured
    (scaled), else the roofline; (time, measured part); `extend` as for `_table_layers`."""
    act = rank_tokens * s.hidden * ACT_BYTES
    total: Any = _pp_time(s, p, rank_tokens)
    measured: Any = 0.0
    ar = plan.all_reduce
    if s.tp > 1 and ar is not None:
        t, m = _curve(ar, act, coverage)
        n = _num_allreduce(s) * p.kernel_scale
        total, measured = total + n * t, measured + n * m
    else:
        total = total + _tp_time(s, p, rank_tokens)
    if plan.alltoall is not None:
        t, m = _curve(plan.alltoall, rank_tokens, coverage)
        if plan.alltoall_prefill is not None:
            te, me = _curve(plan.alltoall_prefill, rank_tokens, coverage)
            t, m = _pick(extend, te, t), _pick(extend, me, m)
        total, measured = total + t * p.kernel_scale, measured + m * p.kernel_scale
    elif _moe_allreduce(s) and ar is not None:
        t, m = _curve(ar, act, coverage)
        n = s.num_moe_layers * p.kernel_scale
        total, measured = total + n * t, measured + n * m
    else:
        total = total + _ep_time(s, p, rank_tokens)
    return total, measured


def _moe_allreduce(s: _Shape) -> bool:
    """The MoE layers combine with the TP all-reduce (experts split over TP, no EP)."""
    return bool(s.num_experts and s.moe_group > 1 and s.ep == 1 and s.moe_group == s.tp)


def _comm_scalar(
    s: _Shape, p: StepParams, plan: KernelPlan, rank_tokens: float, extend: bool = False
) -> float:
    """`_table_comm(...)[0]` for one step."""
    act = rank_tokens * s.hidden * ACT_BYTES
    total = float(_pp_time(s, p, rank_tokens))
    ar = plan.all_reduce
    if s.tp > 1 and ar is not None:
        total += _num_allreduce(s) * p.kernel_scale * ar.at(act)
    else:
        total += _tp_time(s, p, rank_tokens)
    if plan.alltoall is not None:
        a2a = (
            plan.alltoall_prefill if extend and plan.alltoall_prefill is not None else plan.alltoall
        )
        total += a2a.at(rank_tokens) * p.kernel_scale
    elif _moe_allreduce(s) and ar is not None:
        total += s.num_moe_layers * p.kernel_scale * ar.at(act)
    else:
        total += _ep_time(s, p, rank_tokens)
    return total


def _roofline_attention(
    s: _Shape, p: StepParams, b: StepBatch, mx: Callable[[Any, Any], Any], *, decode: bool
) -> Any:
    """Attention of the decoding sequences or of the prompts, by the roofline."""
    k = s.num_draft_tokens
    if decode:
        core = s.attn_decode_coeff * b.decode_attended * (k + 1) / s.dp
        index = s.indexer_coeff * b.decode_context * (k + 1) / s.dp
        nbytes = (s.kv_attn_bytes * b.decode_attended + s.kv_index_bytes * b.decode_context) / s.dp
    else:
        core = s.attn_prefill_coeff * b.prefill_attended / s.dp
        index = s.indexer_coeff * b.prefill_context / s.dp
        nbytes = 0.0
    compute = (core / s.attn_peak + index / s.index_peak) / p.attn_efficiency
    return mx(compute, nbytes / (s.mem_bw * p.mem_efficiency))


def _roofline_step(s: _Shape, p: StepParams, b: StepBatch, mx: Callable[[Any, Any], Any]) -> Any:
    """The step priced by the roofline alone (no tables)."""
    prefill_tokens, prefill_seqs = b.prefill_tokens, b.prefill_seqs
    prefill_attended, prefill_context = b.prefill_attended, b.prefill_context
    prefill_logits, decode_seqs = b.prefill_logits, b.decode_seqs
    decode_attended, decode_context = b.decode_attended, b.decode_context
    k = s.num_draft_tokens
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
    return total + p.step_overhead_s + p.seq_overhead_s * (decode_seqs + prefill_seqs) / s.dp


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
    return dense + _experts_time(s, p, tokens, mx)


def _experts_time(s: _Shape, p: StepParams, tokens: Any, mx: Callable[[Any, Any], Any]) -> Any:
    """Routed experts by the roofline: the distinct experts touched, each read once."""
    e, kk = s.num_experts, s.experts_per_tok
    touched_frac = 1 - (1 - kk / e) ** tokens
    local_experts = e / s.ep
    moe_tp = s.moe_group / s.ep
    touched = local_experts * touched_frac
    expert_bytes = s.num_moe_layers * touched * s.expert_bytes / moe_tp
    expert_flops = s.num_moe_layers * tokens * kk * 2 * s.expert_params / s.moe_group
    m = tokens * kk / (e * touched_frac + 1e-12)
    return _gemm(p, expert_flops, expert_bytes, m, s, mx)


def _num_allreduce(s: _Shape) -> int:
    # one all-reduce after attention in every layer, one after each dense MLP
    return s.num_layers + (s.num_layers - s.num_moe_layers)


def _tp_time(s: _Shape, p: StepParams, rank_tokens: Any) -> Any:
    if s.tp <= 1:
        return 0.0
    act = rank_tokens * s.hidden * ACT_BYTES
    ring = 2 * (s.tp - 1) / s.tp
    return _num_allreduce(s) * (ring * act / (s.tp_bw * p.comm_efficiency) + p.collective_latency_s)


def _ep_time(s: _Shape, p: StepParams, rank_tokens: Any) -> Any:
    """The MoE layers' communication: EP all-to-all, or the MoE-TP all-reduce."""
    if not (s.num_experts and s.moe_group > 1):
        return 0.0
    lat = p.collective_latency_s
    if s.ep > 1:
        per_gpu = rank_tokens * s.dp / s.moe_group * s.experts_per_tok * s.hidden
        frac = (s.ep - 1) / s.ep
        a2a = per_gpu * frac * (DISPATCH_BYTES + ACT_BYTES) / (s.ep_bw * p.comm_efficiency)
        return s.num_moe_layers * (a2a + 2 * lat)
    act = rank_tokens * s.hidden * ACT_BYTES
    ring = 2 * (s.moe_group - 1) / s.moe_group
    return s.num_moe_layers * (ring * act / (s.ep_bw * p.comm_efficiency) + lat)


def _pp_time(s: _Shape, p: StepParams, rank_tokens: Any) -> Any:
    if s.pp <= 1:
        return 0.0
    act = rank_tokens * s.hidden * ACT_BYTES
    return (s.pp - 1) * (act * s.dp / (s.pp_bw * p.comm_efficiency) + p.collective_latency_s)


def _comm_time(s: _Shape, p: StepParams, rank_tokens: Any) -> Any:
    return _tp_time(s, p, rank_tokens) + _ep_time(s, p, rank_tokens) + _pp_time(s, p, rank_tokens)


def params_from_dict(values: dict[str, float], base: StepParams | None = None) -> StepParams:
    """A StepParams with `values` replacing fields of `base` (defaults when None)."""
    return with_values(base or StepParams(), values)


def with_values(params: StepParams, values: dict[str, float]) -> StepParams:
    """`params` with the named numeric fields replaced (the tables are kept)."""
    return replace(params, **values)  # type: ignore[arg-type]
