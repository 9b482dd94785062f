"""Memory fit: per-GPU weights, engine reserve, KV capacity and concurrency, or why not."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace

from moerun.core.deploy.deployment import Deployment, hardware_problems
from moerun.core.deploy.parallel import Parallel, candidate_layouts
from moerun.core.model.kv_cache import kv_bytes_per_token, kv_heads_per_gpu
from moerun.core.model.model_spec import ModelSpec
from moerun.core.model.tensors import SHARD_KINDS
from moerun.core.model.weights import keep_list, tensor_bytes

GB = 1e9


@dataclass(frozen=True, slots=True)
class MemoryFit:
    """The answer for one deployment: bytes per GPU (on its fullest pipeline stage)."""

    fits: bool
    reasons: tuple[str, ...]
    layout: str
    gpu_memory_bytes: int
    budget_bytes_per_gpu: int
    weights_bytes_per_gpu: int
    activation_bytes_per_gpu: int
    cuda_graph_bytes_per_gpu: int
    non_torch_bytes_per_gpu: int
    kv_free_bytes_per_gpu: int
    kv_layout: str
    kv_bytes_per_token_per_gpu: int
    page_size_tokens: int
    # Tokens of KV one attention-DP rank holds, and the whole replica (x DP ranks).
    kv_capacity_tokens_per_rank: int
    num_kv_ranks: int
    kv_capacity_tokens: int
    max_context: int
    max_concurrency_at_context: int

    @property
    def reserve_bytes_per_gpu(self) -> int:
        """Engine reserve: activations, CUDA graphs, non-torch allocations."""
        return (
            self.activation_bytes_per_gpu
            + self.cuda_graph_bytes_per_gpu
            + self.non_torch_bytes_per_gpu
        )

    def concurrency_at(self, context_len: int) -> int:
        """Sequences of `context_len` tokens the replica's KV cache holds at once."""
        if context_len <= 0 or self.kv_capacity_tokens_per_rank <= 0:
            return 0
        pages = -(-context_len // self.page_size_tokens) * self.page_size_tokens
        return self.num_kv_ranks * (self.kv_capacity_tokens_per_rank // pages)


def stage_layers(num_layers: int, pp: int) -> list[range]:
    """Layers of each pipeline stage: even split, earlier stages take the remainder."""
    base, extra = divmod(num_layers, pp)
    out, start = [], 0
    for s in range(pp):
        size = base + (1 if s < extra else 0)
        out.append(range(start, start + size))
        start += size
    return out


def _shard_factor(shard: str, dep: Deployment) -> float:
    par, spec = dep.parallel, dep.model
    if shard in ("vocab", "attn"):
        return float(par.tp)
    if shard == "kv_heads":
        return spec.arch.num_kv_heads / kv_heads_per_gpu(spec, par.tp)
    if shard == "dense":
        # SGLang splits dense MLPs over its whole --tp-size (tp x dp); vLLM over each rank's TP.
        return float(par.moe_group if dep.engine.name == "sglang" else par.tp)
    if shard == "expert":
        return float(par.moe_group)
    return 1.0


@dataclass(frozen=True, slots=True)
class _ShardedBytes:
    """Weight bytes of one spec in one format, by shard kind: per-layer prefix sums of the
    main layers, plus the first-stage (embedding), last-stage (norm, head) and MTP parts."""

    prefix: dict[str, list[int]]
    first: dict[str, int]
    last: dict[str, int]
    mtp: dict[str, int]


# (spec identity, format) -> (spec, bytes); the plan table fits hundreds of deployments of
# one spec, so the tensor walk is done once per format.
_BYTES_CACHE: dict[tuple[int, str], tuple[ModelSpec, _ShardedBytes]] = {}


def _sharded_bytes(spec: ModelSpec, fmt: str) -> _ShardedBytes:
    key = (id(spec), fmt)
    hit = _BYTES_CACHE.get(key)
    if hit is not None and hit[0] is spec:
        return hit[1]
    keep = keep_list(spec)
    per_layer: dict[str, list[int]] = defaultdict(lambda: [0] * spec.arch.num_layers)
    first: dict[str, int] = defaultdict(int)
    last: dict[str, int] = defaultdict(int)
    mtp: dict[str, int] = defaultdict(int)
    for t in spec.tensors:
        b = tensor_bytes(t, fmt, keep)
        if t.mtp:
            mtp[t.shard] += b
        elif t.layer is None:
            (first if t.component == "embedding" else last)[t.shard] += b
        else:
            per_layer[t.shard][t.layer] += b
    prefix = {}
    for shard, values in per_layer.items():
        acc = [0]
        for v in values:
            acc.append(acc[-1] + v)
        prefix[shard] = acc
    result = _ShardedBytes(prefix, dict(first), dict(last), dict(mtp))
    if len(_BYTES_CACHE) > 64:
        _BYTES_CACHE.clear()
    _BYTES_CACHE[key] = (spec, result)
    return result


def weights_per_gpu(dep: Deployment) -> list[int]:
    """Weight bytes one GPU of each pipeline stage holds."""
    spec = dep.model
    stages = stage_layers(spec.arch.num_layers, dep.parallel.pp)
    sb = _sharded_bytes(spec, dep.weights)
    factor = {shard: _shard_factor(shard, dep) for shard in SHARD_KINDS}
    totals = []
    for s, layers in enumerate(stages):
        total = 0.0
        for shard, acc in sb.prefix.items():
            total += (acc[layers.stop] - acc[layers.start]) / factor[shard]
        if s == 0:
            total += sum(b / factor[shard] for shard, b in sb.first.items())
        if s == len(stages) - 1:
            total += sum(b / factor[shard] for shard, b in sb.last.items())
            if dep.mtp.enabled:  # engines load the MTP layer only for speculative decoding
                total += sum(b / factor[shard] for shard, b in sb.mtp.items())
        totals.append(int(total))
    return totals


def memory_fit(dep: Deployment) -> MemoryFit:
    """Fit one deployment: weights, reserve and KV per GPU, with every reason it fails."""
    spec, par, gpu = dep.model, dep.parallel, dep.gpu
    arch = spec.arch
    reasons = list(dep.layout_problems())
    valid_shape = par.num_gpus == dep.num_gpus and par.pp <= arch.num_layers
    stages = stage_layers(arch.num_layers, par.pp) if valid_shape else [range(arch.num_layers)]
    per_stage_weights = weights_per_gpu(dep) if valid_shape else [0]
    fraction = dep.effective_mem_fraction
    budget = int(gpu.memory_bytes * fraction)
    hidden_bytes = 2 * arch.hidden_size
    activation = dep.batched_tokens * hidden_bytes * dep.reserve.activation_hidden_vectors_per_token
    # logits of the rows sampled in one step: at most the sequence cap, or the chunk when the
    # engine sizes its cap from memory (SGLang)
    rows = dep.max_num_seqs or dep.default_max_num_seqs or dep.batched_tokens
    logits = rows * arch.vocab_size // max(par.tp, 1) * dep.reserve.logits_bytes_per_element
    activation += logits
    graphs, non_torch = dep.reserve.cuda_graph_bytes, dep.reserve.non_torch_bytes
    reserve = activation + graphs + non_torch
    layout = dep.kv_layout
    heads = kv_heads_per_gpu(spec, par.tp)
    mtp_layers = arch.num_mtp_layers if dep.mtp.enabled else 0
    page = dep.page_size_tokens

    worst_tokens: int | None = None
    worst_weights, worst_free, worst_kv_per_token = 0, 0, 0
    for s, layers in enumerate(stages):
        w = per_stage_weights[s]
        inside = reserve if dep.engine.reserve_inside_budget else 0
        free = budget - w - inside
        kv_tok = kv_bytes_per_token(
            spec,
            layout,
            layers=layers,
            num_mtp_layers=mtp_layers if s == len(stages) - 1 else 0,
            kv_heads_per_gpu=heads,
        )
        tokens = max(free, 0) // kv_tok // page * page if kv_tok else 0
        if worst_tokens is None or tokens < worst_tokens:
            worst_tokens, worst_free, worst_kv_per_token = tokens, free, kv_tok
        worst_weights = max(worst_weights, w)
    tokens_per_rank = worst_tokens or 0

    if valid_shape:
        if dep.engine.reserve_inside_budget and worst_weights + reserve > budget:
            reasons.append(
                f"weights {worst_weights / GB:.1f} GB + engine reserve {reserve / GB:.1f} GB "
                f"per GPU exceed the {budget / GB:.1f} GB budget ({fraction:.2f} of "
                f"{gpu.memory_bytes / GB:.1f} GB on {gpu.name})"
            )
        elif not dep.engine.reserve_inside_budget and worst_weights > budget:
            reasons.append(
                f"weights {worst_weights / GB:.1f} GB per GPU exceed the static budget "
                f"{budget / GB:.1f} GB ({fraction:.2f} of {gpu.memory_bytes / GB:.1f} GB)"
            )
        elif not dep.engine.reserve_inside_budget and gpu.memory_bytes - budget < reserve:
            reasons.append(
                f"mem fraction {fraction:.2f} leaves {(gpu.memory_bytes - budget) / GB:.1f} GB "
                f"outside the static pool, less than the {reserve / GB:.1f} GB of activations "
                "and CUDA graphs; lower --mem-fraction"
            )
        elif tokens_per_rank < dep.effective_max_context:
            reasons.append(
                f"KV cache holds {tokens_per_rank:,} tokens per rank, less than one "
                f"{dep.effective_max_context:,}-token sequence (the engine refuses to start; "
                "lower --max-context or add GPUs)"
            )
    fits = not reasons
    capacity = tokens_per_rank * par.dp if valid_shape else 0
    fit = MemoryFit(
        fits=fits,
        reasons=tuple(reasons),
        layout=par.describe(),
        gpu_memory_bytes=gpu.memory_bytes,
        budget_bytes_per_gpu=budget,
        weights_bytes_per_gpu=worst_weights,
        activation_bytes_per_gpu=activation,
        cuda_graph_bytes_per_gpu=graphs,
        non_torch_bytes_per_gpu=non_torch,
        kv_free_bytes_per_gpu=max(worst_free, 0),
        kv_layout=layout,
        kv_bytes_per_token_per_gpu=worst_kv_per_token,
        page_size_tokens=page,
        kv_capacity_tokens_per_rank=tokens_per_rank,
        num_kv_ranks=par.dp,
        kv_capacity_tokens=capacity,
        max_context=dep.effective_max_context,
        max_concurrency_at_context=0,
    )
    concurrency = fit.concurrency_at(dep.effective_max_context) if fits else 0
    return replace(fit, max_concurrency_at_context=concurrency)


def best_layout(dep: Deployment) -> tuple[Parallel, MemoryFit] | None:
    """The valid layout over the same GPUs with the most KV capacity, if any fits."""
    if hardware_problems(dep):
        return None
    best: tuple[Parallel, MemoryFit] | None = None
    for par in candidate_layouts(dep.num_gpus, dep.gpu.gpus_per_node):
        fit = memory_fit(replace(dep, parallel=par))
        if not fit.fits:
            continue
        key = (fit.kv_capacity_tokens, -par.pp, par.ep)
        if best is None or key > (best[1].kv_capacity_tokens, -best[0].pp, best[0].ep):
            best = (par, fit)
    return best
