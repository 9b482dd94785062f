"""Which measured table prices each operation of one deployment, read once per deployment.

A `KernelPlan` turns a GPU and engine's `KernelTables` into per-deployment curves over the
sizes a step has (tokens per rank, sequences and context): the non-expert GEMMs of every layer
(summed over the model's weight shapes), lm_head, the fused MoE of every MoE layer, attention
(a whole-module table, projections included, where AIConfigurator measured one for the model's
architecture; else the attention kernel alone), the TP all-reduce and the EP all-to-all. What
no table covers is left to the roofline (`fallback_*` fields), so every step's time splits
into a measured part and a modelled part.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from moerun.core.deploy.deployment import Deployment
from moerun.core.memo import IdentityMemo
from moerun.core.model.model_spec import ModelSpec
from moerun.core.model.weights import keep_list, tensor_bytes
from moerun.core.perf.tables import (
    AttentionKey,
    Curve,
    Grid,
    KernelTables,
    MoeKey,
    add_curves,
)

# moerun weight format -> the dtype AIConfigurator's GEMM / MoE tables name (block-scaled fp8
# is what GLM-5-FP8 and DeepSeek-V3 ship; int4 and mxfp4 run weight-only MoE kernels)
GEMM_DTYPE = {"bf16": "bfloat16", "fp8": "fp8_block", "nvfp4": "nvfp4"}
MOE_DTYPE = {
    "bf16": "bfloat16",
    "fp8": "fp8_block",
    "nvfp4": "nvfp4",
    "int4": "int4_wo",
    "mxfp4": "w4a16_mxfp4",
}
KV_DTYPE = {"bf16": "bfloat16", "fp8": "fp8"}
# Row-parallel projections split their input features over TP; the others their outputs.
_ROW_PARALLEL = ("o_proj.weight", "down_proj.weight", "dense.weight", "wo.weight")


def architecture(dep: Deployment) -> str:
    """The HF architecture whose attention-module tables fit this model ('' when none)."""
    arch = dep.model.arch
    if arch.mla is None:
        return ""
    if arch.indexer is not None:
        return (
            "GlmMoeDsaForCausalLM"
            if arch.model_type.startswith("glm")
            else "DeepseekV32ForCausalLM"
        )
    return "DeepseekV3ForCausalLM"


@dataclass(frozen=True, slots=True, eq=False)
class KernelPlan:
    """Measured curves for one deployment (all layers summed); None where no table fits."""

    source: str
    dense: Curve | None  # non-expert GEMMs of every layer, over tokens per attention rank
    fallback_params: float  # non-expert parameters (per GPU) left to the roofline
    fallback_bytes: float
    head: Curve | None  # lm_head, over rows that need logits per rank
    moe: Curve | None  # fused MoE of every MoE layer, over tokens per MoE group
    # behind DeepEP (`Deployment.uses_deepep`) `moe` is its low-latency mode's expert GEMMs and
    # these the normal mode's, for a step in which any rank prefills (None: `moe` throughout)
    moe_prefill: Curve | None
    attn_decode: Grid | None  # every layer, over (sequences per rank, context)
    attn_prefill: Grid | None  # every layer, over (prompts per rank, prompt tokens)
    attn_module: bool  # the attention tables include the attention projections
    attn_prefill_fixed_s: float  # every layer's prompt-table time at its shortest prompt
    all_reduce: Curve | None  # one all-reduce, over message bytes
    alltoall: Curve | None  # dispatch + combine of every MoE layer, over tokens per rank
    alltoall_prefill: Curve | None  # the same in DeepEP's normal mode (None: `alltoall`)


def build_plan(dep: Deployment, tables: KernelTables) -> KernelPlan:
    """The curves `dep` reads from `tables`."""
    spec, par = dep.model, dep.parallel
    hf_arch = architecture(dep)
    gdtype = GEMM_DTYPE.get(dep.weights, "")
    kv = KV_DTYPE.get(dep.kv_dtype, "bfloat16")
    arch = spec.arch
    heads = max(1, arch.num_attention_heads // par.tp)
    decode = _attention(tables, "decode", hf_arch, gdtype, kv, heads)
    prefill = _attention(tables, "prefill", hf_arch, gdtype, kv, heads)
    module = decode is not None and decode[1] and prefill is not None and prefill[1]
    dense = _dense_gemms(spec, tables, dep.weights, par.tp, module)
    return KernelPlan(
        source=tables.source,
        dense=dense.dense,
        fallback_params=dense.fallback_params,
        fallback_bytes=dense.fallback_bytes,
        head=dense.head,
        moe=_deepep_moe(dep, tables, "decode") or _moe(dep, tables),
        moe_prefill=_deepep_moe(dep, tables, "prefill"),
        attn_decode=decode[0].scaled(arch.num_layers) if decode else None,
        attn_prefill=prefill[0].scaled(arch.num_layers) if prefill else None,
        attn_module=module,
        attn_prefill_fixed_s=prefill[0].at(1.0, prefill[0].cols[0]) * arch.num_layers
        if prefill
        else 0.0,
        all_reduce=tables.all_reduce.get(par.tp) if par.tp > 1 else None,
        alltoall=_alltoall(dep, tables.alltoall),
        alltoall_prefill=_alltoall(dep, tables.alltoall_normal) if dep.uses_deepep else None,
    )


@dataclass(frozen=True, slots=True, eq=False)
class _DenseGemms:
    """The non-expert GEMMs of one GPU: measured curves and what the roofline keeps."""

    dense: Curve | None  # every layer's non-expert GEMMs, over tokens per attention rank
    fallback_params: float
    fallback_bytes: float
    head: Curve | None


_DENSE: IdentityMemo[_DenseGemms] = IdentityMemo()


def _dense_gemms(
    spec: ModelSpec, tables: KernelTables, weights: str, tp: int, module: bool
) -> _DenseGemms:
    """The dense GEMM curves of `spec` at `tp` (read once per spec, tables, format and TP: a
    plan prices hundreds of layouts that share them); `module`: attention projections are in
    the attention tables, so they are left out here."""
    return _DENSE.get(
        (spec, tables),
        (weights, tp, module),
        lambda: _read_dense(spec, tables, weights, tp, module),
    )


def _read_dense(
    spec: ModelSpec, tables: KernelTables, weights: str, tp: int, module: bool
) -> _DenseGemms:
    arch = spec.arch
    gdtype = GEMM_DTYPE.get(weights, "")
    grid = tables.gemm.get(gdtype) or tables.gemm.get("bfloat16")
    keep = keep_list(spec)
    shapes: Counter[tuple[int, int]] = Counter()
    fallback_params = fallback_bytes = 0.0
    head: Curve | None = None
    curves: dict[tuple[int, int], Curve | None] = {}
    for t in spec.tensors:
        if t.mtp or not t.is_linear or t.shard == "expert" or t.component == "embedding":
            continue
        if module and t.component in ("attention", "indexer"):
            continue
        n, k = _per_gpu(t.name, t.shape, t.shard, tp, arch.num_kv_heads)
        if (n, k) not in curves:  # one curve per weight shape (a model repeats its shapes)
            curves[(n, k)] = grid.curve(n, k) if grid is not None else None
        curve = curves[(n, k)]
        if t.component == "head":
            head = curve
            if curve is None:
                fallback_params += n * k
                fallback_bytes += float(tensor_bytes(t, weights, keep)) / tp
            continue
        if curve is None:
            fallback_params += n * k * t.count
            fallback_bytes += float(tensor_bytes(t, weights, keep)) * n * k / t.numel * t.count
        else:
            shapes[(n, k)] += t.count
    dense = None
    if shapes and grid is not None:
        parts = [(c, float(w)) for nk, w in shapes.items() if (c := curves[nk]) is not None]
        dense = add_curves(parts)
    return _DenseGemms(dense, fallback_params, fallback_bytes, head)


def _per_gpu(
    name: str, shape: tuple[int, ...], shard: str, tp: int, kv_heads: int
) -> tuple[int, int]:
    """(N, K) of one weight's GEMM on one GPU (out features, in features)."""
    n, k = shape[0], shape[1] if len(shape) > 1 else 1
    split = {"attn": tp, "dense": tp, "vocab": tp}.get(shard, 1)
    if shard == "kv_heads":
        split = min(tp, max(1, kv_heads))
    if split > 1 and name.endswith(_ROW_PARALLEL):
        return n, max(1, k // split)
    return max(1, n // split), k


def _attention(
    tables: KernelTables, phase: str, arch: str, gdtype: str, kv: str, heads: int
) -> tuple[Grid, bool] | None:
    """The attention table for this model: (grid per layer, includes projections)."""
    for key in (
        AttentionKey("module", phase, arch, gdtype, kv, heads),
        AttentionKey("module", phase, arch, gdtype, "bfloat16", heads),
    ):
        if arch and key in tables.attention:
            return tables.attention[key], True
    if arch:  # MLA models: the attention kernel alone (projections priced as GEMMs)
        for kvd in (kv, "bfloat16"):
            for g in ("bfloat16", ""):
                key = AttentionKey("kernel", phase, "", g, kvd, heads)
                if key in tables.attention:
                    return tables.attention[key], False
    return None


def _moe(dep: Deployment, tables: KernelTables) -> Curve | None:
    arch = dep.model.arch
    moe = arch.moe
    if moe is None:
        return None
    par = dep.parallel
    key = MoeKey(
        MOE_DTYPE.get(dep.weights, ""),
        arch.hidden_size,
        moe.moe_intermediate_size,
        moe.num_experts_per_tok,
        moe.num_routed_experts,
        par.moe_group // par.ep,
        par.ep,
    )
    curve = tables.moe.get(key)
    return curve.scaled(arch.num_moe_layers) if curve else None


def _alltoall(dep: Deployment, table: dict[tuple[int, int, int], Curve]) -> Curve | None:
    """DeepEP dispatch + combine in one mode (`table`), measured within one 8-GPU node."""
    arch = dep.model.arch
    moe, par = arch.moe, dep.parallel
    if moe is None or par.ep <= 1 or par.dp <= 1 or par.moe_group > 8:
        return None
    key = (arch.hidden_size, moe.num_experts_per_tok, moe.num_routed_experts)
    curve = table.get(key)
    return curve.scaled(arch.num_moe_layers) if curve else None


def _deepep_moe(dep: Deployment, tables: KernelTables, phase: str) -> Curve | None:
    """The expert GEMMs SGLang runs behind DeepEP in `phase`'s mode, every MoE layer, over
    tokens per MoE group; None when the deployment does not use DeepEP or nothing fits.

    The tables time one rank's experts over tokens per rank; a group's tokens are EP times
    that. A model whose width was not measured takes the nearest width's table times the ratio
    of widths (at a fixed expert width both expert GEMMs scale with it); an EP that was not
    measured lies between its measured neighbours, log-linear in EP at equal tokens per rank
    (tried on the tables by hiding each measured EP: median 6-10%, p90 17-23%). Either makes
    the curve derived, so it does not count as measured coverage.
    """
    arch, par = dep.model.arch, dep.parallel
    moe = arch.moe
    if moe is None or not dep.uses_deepep or par.moe_group != par.ep:
        return None
    same = {
        k: c
        for k, c in tables.moe_deepep.items()
        if k.phase == phase
        and k.dtype == MOE_DTYPE.get(dep.weights, "")
        and (k.inter, k.topk, k.experts)
        == (moe.moe_intermediate_size, moe.num_experts_per_tok, moe.num_routed_experts)
    }
    if not same:
        return None
    hidden = min({k.hidden for k in same}, key=lambda h: (abs(h - arch.hidden_size), h))
    by_ep = {k.ep: c for k, c in same.items() if k.hidden == hidden}
    curve = by_ep.get(par.ep) or _between_eps(by_ep, par.ep)
    if curve is None:
        return None
    width = arch.hidden_size / hidden
    return Curve(
        tuple(x * par.ep for x in curve.xs),
        tuple(y * width * arch.num_moe_layers for y in curve.ys),
        curve.measured and width == 1.0,
    )


def _between_eps(by_ep: dict[int, Curve], ep: int) -> Curve | None:
    """A derived curve for an EP that lies between two measured ones (None outside them)."""
    lo = max((e for e in by_ep if e < ep), default=None)
    hi = min((e for e in by_ep if e > ep), default=None)
    if lo is None or hi is None:
        return None
    w = math.log(ep / lo) / math.log(hi / lo)
    a, b = by_ep[lo], by_ep[hi]
    xs = tuple(x for x in a.xs if b.xs[0] <= x <= b.xs[-1])
    if len(xs) < 2:
        return None
    ys = tuple(math.exp((1 - w) * math.log(a.at(x)) + w * math.log(b.at(x))) for x in xs)
    return Curve(xs, ys, measured=False)
