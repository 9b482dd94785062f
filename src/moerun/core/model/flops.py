"""FLOPs per token for prefill and decode as a function of context length.

A multiply-add is 2 FLOPs. Linear layers cost 2 x (active parameters without the input
embedding) per token. Attention adds, per layer and query token attending to T tokens:
  MLA prefill (expanded K/V, as engines run prefill):  2 x heads x (qk_head_dim + v_head_dim) x T
  MLA decode (absorbed, attention over the latent):   2 x heads x (2 x kv_lora_rank + rope) x T
  GQA:                                               2 x heads x 2 x head_dim x T
DSA caps T at index_topk, but its indexer scores every past token on every indexer layer:
  2 x index_n_heads x index_head_dim x context.
"""

from __future__ import annotations

from moerun.core.model.model_spec import ModelSpec

PHASES = ("prefill", "decode")


def linear_flops_per_token(spec: ModelSpec) -> int:
    """Matmul FLOPs per token outside attention scores (embedding lookup excluded)."""
    return 2 * spec.active_params_no_embedding


def attention_coeff(spec: ModelSpec, phase: str) -> int:
    """FLOPs per layer per attended token."""
    arch = spec.arch
    heads = arch.num_attention_heads
    if arch.mla is not None:
        if phase == "decode":
            return 2 * heads * (2 * arch.mla.kv_lora_rank + arch.mla.qk_rope_head_dim)
        return 2 * heads * (arch.mla.qk_head_dim + arch.mla.v_head_dim)
    return 2 * heads * 2 * arch.head_dim


def indexer_coeff(spec: ModelSpec) -> int:
    """FLOPs per token of context for all indexer layers together."""
    arch = spec.arch
    if arch.indexer is None:
        return 0
    per_layer = 2 * arch.indexer.num_heads * arch.indexer.head_dim
    return per_layer * arch.indexer.num_indexer_layers


def attention_flops_per_token(spec: ModelSpec, context_len: int, phase: str) -> int:
    """Attention FLOPs of one token that sees `context_len` tokens (itself included)."""
    if phase not in PHASES:
        raise ValueError(f"phase must be one of {PHASES}")
    attended = spec.arch.attended_tokens(context_len)
    core = attention_coeff(spec, phase) * spec.arch.num_layers * attended
    return core + indexer_coeff(spec) * context_len


def flops_per_token(spec: ModelSpec, context_len: int, phase: str = "decode") -> int:
    """Total FLOPs of one token at `context_len`."""
    return linear_flops_per_token(spec) + attention_flops_per_token(spec, context_len, phase)


def sum_capped(first: int, last: int, cap: int | None) -> int:
    """Sum of min(p, cap) for p in [first, last]."""
    if last < first:
        return 0
    if cap is None or last <= cap:
        return (first + last) * (last - first + 1) // 2
    if first > cap:
        return cap * (last - first + 1)
    return (first + cap) * (cap - first + 1) // 2 + cap * (last - cap)


def prefill_flops(spec: ModelSpec, num_new_tokens: int, num_cached_tokens: int = 0) -> int:
    """FLOPs to prefill `num_new_tokens` after `num_cached_tokens` already in the cache."""
    first, last = num_cached_tokens + 1, num_cached_tokens + num_new_tokens
    arch = spec.arch
    cap = arch.indexer.topk if arch.indexer is not None else None
    attended = sum_capped(first, last, cap)
    context_sum = sum_capped(first, last, None)
    attn = attention_coeff(spec, "prefill") * arch.num_layers * attended
    return linear_flops_per_token(spec) * num_new_tokens + attn + indexer_coeff(spec) * context_sum
