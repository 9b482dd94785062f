"""The tensor inventory of a checkpoint, built from its Architecture (config.json's fields).

Names follow the Hugging Face checkpoints (`model.layers.{i}.self_attn.q_a_proj.weight`), so
that `quantization_config.modules_to_not_convert` can be matched against them.
"""

from __future__ import annotations

from typing import TypedDict

from moerun.core.model.shape import Architecture
from moerun.core.model.tensors import TensorGroup, linear, vector


class _Where(TypedDict):
    layer: int
    mtp: bool


def build_tensors(arch: Architecture) -> tuple[TensorGroup, ...]:
    """Every stored tensor of the main model and its MTP layers."""
    h, vocab, mlp_bias = arch.hidden_size, arch.vocab_size, arch.mlp_bias
    out: list[TensorGroup] = [
        TensorGroup("model.embed_tokens.weight", (vocab, h), "embedding", "vocab"),
    ]
    for i in range(arch.num_layers):
        out += _decoder_layer(arch, i, moe=arch.moe_layers[i], mtp=False, mlp_bias=mlp_bias)
    out.append(vector("model.norm.weight", h, "norms", "replicated", layer=None, mtp=False))
    if not arch.tie_word_embeddings:
        out.append(TensorGroup("lm_head.weight", (vocab, h), "head", "vocab", is_linear=True))
    for j in range(arch.num_mtp_layers):
        out += _mtp_layer(arch, arch.num_layers + j, mlp_bias=mlp_bias)
    return tuple(out)


def _mtp_layer(arch: Architecture, i: int, *, mlp_bias: bool) -> list[TensorGroup]:
    """A DeepSeek-style nextn layer: enorm, hnorm, eh_proj, one decoder layer, shared head."""
    h, p = arch.hidden_size, f"model.layers.{i}"
    moe = arch.moe is not None
    out = [
        vector(f"{p}.enorm.weight", h, "norms", "replicated", layer=i, mtp=True),
        vector(f"{p}.hnorm.weight", h, "norms", "replicated", layer=i, mtp=True),
        linear(f"{p}.eh_proj", h, 2 * h, "dense_mlp", "replicated", layer=i, mtp=True),
        *_decoder_layer(arch, i, moe=moe, mtp=True, mlp_bias=mlp_bias),
        vector(f"{p}.shared_head.norm.weight", h, "norms", "replicated", layer=i, mtp=True),
    ]
    if arch.mtp_stores_embed_head:
        shape = (arch.vocab_size, h)
        out.append(
            TensorGroup(f"{p}.embed_tokens.weight", shape, "embedding", "vocab", i, mtp=True)
        )
        out.append(
            TensorGroup(
                f"{p}.shared_head.head.weight", shape, "head", "vocab", i, is_linear=True, mtp=True
            )
        )
    return out


def _decoder_layer(
    arch: Architecture, i: int, *, moe: bool, mtp: bool, mlp_bias: bool
) -> list[TensorGroup]:
    h, p = arch.hidden_size, f"model.layers.{i}"
    out = [
        vector(f"{p}.input_layernorm.weight", h, "norms", "replicated", layer=i, mtp=mtp),
        vector(f"{p}.post_attention_layernorm.weight", h, "norms", "replicated", layer=i, mtp=mtp),
    ]
    if arch.mla is not None:
        out += _mla(arch, i, mtp)
    else:
        out += _gqa(arch, i, mtp)
    if arch.indexer is not None:
        runs = arch.indexer.layers[i] if i < arch.num_layers else True
        if runs:
            out += _indexer(arch, i, mtp)
    if moe:
        out += _moe(arch, i, mtp)
    else:
        out += _mlp(f"{p}.mlp", h, arch.intermediate_size, "dense_mlp", i, mtp, bias=mlp_bias)
    return out


def _mla(arch: Architecture, i: int, mtp: bool) -> list[TensorGroup]:
    mla = arch.mla
    assert mla is not None
    h, heads, p = arch.hidden_size, arch.num_attention_heads, f"model.layers.{i}.self_attn"
    c = "attention"
    kw: _Where = {"layer": i, "mtp": mtp}
    out: list[TensorGroup] = []
    if mla.q_lora_rank is not None:
        out += [
            linear(f"{p}.q_a_proj", mla.q_lora_rank, h, c, "attn_replicated", **kw),
            vector(f"{p}.q_a_layernorm.weight", mla.q_lora_rank, c, "attn_replicated", **kw),
            linear(f"{p}.q_b_proj", heads * mla.qk_head_dim, mla.q_lora_rank, c, "attn", **kw),
        ]
    else:
        out.append(linear(f"{p}.q_proj", heads * mla.qk_head_dim, h, c, "attn", **kw))
    kv_b_out = heads * (mla.qk_nope_head_dim + mla.v_head_dim)
    out += [
        linear(f"{p}.kv_a_proj_with_mqa", mla.latent_dim, h, c, "attn_replicated", **kw),
        vector(f"{p}.kv_a_layernorm.weight", mla.kv_lora_rank, c, "attn_replicated", **kw),
        linear(f"{p}.kv_b_proj", kv_b_out, mla.kv_lora_rank, c, "attn", **kw),
        linear(f"{p}.o_proj", h, heads * mla.v_head_dim, c, "attn", **kw),
    ]
    return out


def _gqa(arch: Architecture, i: int, mtp: bool) -> list[TensorGroup]:
    h, hd, p = arch.hidden_size, arch.head_dim, f"model.layers.{i}.self_attn"
    q_out, kv_out = arch.num_attention_heads * hd, arch.num_kv_heads * hd
    c = "attention"
    kw: _Where = {"layer": i, "mtp": mtp}
    out = [
        linear(f"{p}.q_proj", q_out, h, c, "attn", **kw),
        linear(f"{p}.k_proj", kv_out, h, c, "kv_heads", **kw),
        linear(f"{p}.v_proj", kv_out, h, c, "kv_heads", **kw),
        linear(f"{p}.o_proj", h, q_out, c, "attn", **kw),
    ]
    if arch.attention_bias:
        out += [
            vector(f"{p}.q_proj.bias", q_out, c, "attn", **kw),
            vector(f"{p}.k_proj.bias", kv_out, c, "kv_heads", **kw),
            vector(f"{p}.v_proj.bias", kv_out, c, "kv_heads", **kw),
        ]
        # Llama applies attention_bias to o_proj too; GLM-4.x MoE keeps o_proj bias-free.
        if arch.model_type == "llama":
            out.append(vector(f"{p}.o_proj.bias", h, c, "replicated", **kw))
    if arch.qk_norm:
        out += [
            vector(f"{p}.q_norm.weight", hd, c, "attn_replicated", **kw),
            vector(f"{p}.k_norm.weight", hd, c, "attn_replicated", **kw),
        ]
    return out


def _indexer(arch: Architecture, i: int, mtp: bool) -> list[TensorGroup]:
    idx, mla = arch.indexer, arch.mla
    assert idx is not None and mla is not None
    h, p = arch.hidden_size, f"model.layers.{i}.self_attn.indexer"
    q_in = mla.q_lora_rank if mla.q_lora_rank is not None else h
    c, s = "indexer", "attn_replicated"
    kw: _Where = {"layer": i, "mtp": mtp}
    return [
        linear(f"{p}.wq_b", idx.num_heads * idx.head_dim, q_in, c, s, **kw),
        linear(f"{p}.wk", idx.head_dim, h, c, s, **kw),
        vector(f"{p}.k_norm.weight", idx.head_dim, c, s, **kw),
        vector(f"{p}.k_norm.bias", idx.head_dim, c, s, **kw),
        linear(f"{p}.weights_proj", idx.num_heads, h, c, s, **kw),
    ]


def _moe(arch: Architecture, i: int, mtp: bool) -> list[TensorGroup]:
    moe = arch.moe
    assert moe is not None
    h, p = arch.hidden_size, f"model.layers.{i}.mlp"
    kw: _Where = {"layer": i, "mtp": mtp}
    e, inter = moe.num_routed_experts, moe.moe_intermediate_size
    out = [
        linear(f"{p}.gate", e, h, "router", "replicated", **kw),
        linear(f"{p}.experts.*.gate_proj", inter, h, "routed_experts", "expert", count=e, **kw),
        linear(f"{p}.experts.*.up_proj", inter, h, "routed_experts", "expert", count=e, **kw),
        linear(f"{p}.experts.*.down_proj", h, inter, "routed_experts", "expert", count=e, **kw),
    ]
    if moe.router_bias:
        out.append(
            vector(f"{p}.gate.e_score_correction_bias", e, "router", "replicated", fp32=True, **kw)
        )
    if moe.shared_intermediate_size:
        inter_s = moe.shared_intermediate_size
        out += _mlp(f"{p}.shared_experts", h, inter_s, "shared_experts", i, mtp, bias=False)
    return out


def _mlp(
    p: str, h: int, inter: int, component: str, i: int, mtp: bool, *, bias: bool
) -> list[TensorGroup]:
    kw: _Where = {"layer": i, "mtp": mtp}
    out = [
        linear(f"{p}.gate_proj", inter, h, component, "dense", **kw),
        linear(f"{p}.up_proj", inter, h, component, "dense", **kw),
        linear(f"{p}.down_proj", h, inter, component, "dense", **kw),
    ]
    if bias:
        out += [
            vector(f"{p}.gate_proj.bias", inter, component, "dense", **kw),
            vector(f"{p}.up_proj.bias", inter, component, "dense", **kw),
            vector(f"{p}.down_proj.bias", h, component, "replicated", **kw),
        ]
    return out
