"""KV-cache bytes per token, per engine cache layout.

MLA caches one latent vector per token and layer (kv_lora_rank + qk_rope_head_dim), the same
on every TP rank. The layouts (vLLM `vllm/v1/attention/backends/mla/flashmla_sparse.py`,
`.../mla/indexer.py`; SGLang `mem_cache/memory_pool.py`):
  bf16        latent in bf16: 576 x 2 = 1,152 B per layer for GLM-5 / DeepSeek-V3.
  fp8         MLA without DSA: latent in fp8, 576 B.
              MLA + DSA (vLLM `fp8_ds_mla`, SGLang fp8 on Hopper): 512 fp8 latent + 4 fp32
              scales + 64 bf16 rope = 656 B.
  fp8_trtllm  SGLang's trtllm DSA backend (Blackwell default): 576 B.
The DSA indexer caches one fp8 key per token (index_head_dim bytes + one fp32 scale) on each
layer that runs an indexer, whatever the layout. GQA caches K and V: 2 x kv_heads x head_dim
elements per layer, split across TP up to kv_heads and replicated beyond.
"""

from __future__ import annotations

from moerun.core.model.model_spec import ModelSpec

KV_DTYPES = ("bf16", "fp8")


def kv_layouts(spec: ModelSpec) -> tuple[str, ...]:
    """The cache layouts engines offer for this attention kind."""
    if spec.arch.attention_kind == "mla+dsa":
        return ("bf16", "fp8", "fp8_trtllm")
    return ("bf16", "fp8")


def kv_layout_for(spec: ModelSpec, kv_dtype: str, engine: str, nvidia_blackwell: bool) -> str:
    """The layout an engine picks for `--kv-dtype`: SGLang on Blackwell uses trtllm for DSA."""
    if (
        kv_dtype == "fp8"
        and spec.arch.attention_kind == "mla+dsa"
        and engine == "sglang"
        and nvidia_blackwell
    ):
        return "fp8_trtllm"
    return kv_dtype


def attention_bytes_per_layer(
    spec: ModelSpec, layout: str, kv_heads_per_gpu: int | None = None
) -> int:
    """Bytes one token occupies in one layer's attention cache (one GPU's share for GQA)."""
    arch = spec.arch
    if layout not in kv_layouts(spec):
        raise ValueError(f"unknown KV layout {layout!r} for {arch.attention_kind} attention")
    if arch.mla is not None:
        latent = arch.mla.latent_dim
        if layout == "bf16":
            return 2 * latent
        if layout == "fp8" and arch.indexer is not None:
            rope = arch.mla.qk_rope_head_dim
            nope = arch.mla.kv_lora_rank
            return nope + 4 * (nope // 128) + 2 * rope
        return latent
    heads = arch.num_kv_heads if kv_heads_per_gpu is None else kv_heads_per_gpu
    elem = 2 if layout == "bf16" else 1
    return 2 * heads * arch.head_dim * elem


def indexer_bytes_per_layer(spec: ModelSpec) -> int:
    """Bytes one token occupies in an indexer layer's key cache (fp8 key + fp32 scale)."""
    if spec.arch.indexer is None:
        return 0
    return spec.arch.indexer.head_dim + 4


def kv_bytes_per_token(
    spec: ModelSpec,
    layout: str,
    *,
    layers: range | None = None,
    num_mtp_layers: int = 0,
    kv_heads_per_gpu: int | None = None,
) -> int:
    """Cache bytes per token over `layers` (default all), plus `num_mtp_layers` draft layers."""
    arch = spec.arch
    layer_ids = range(arch.num_layers) if layers is None else layers
    per_attn = attention_bytes_per_layer(spec, layout, kv_heads_per_gpu)
    idx = indexer_bytes_per_layer(spec)
    total = 0
    for i in layer_ids:
        total += per_attn
        if arch.indexer is not None and arch.indexer.layers[i]:
            total += idx
    return total + num_mtp_layers * (per_attn + idx)


def kv_heads_per_gpu(spec: ModelSpec, attn_tp: int) -> int:
    """GQA KV heads one GPU holds: split up to num_kv_heads ranks, replicated beyond."""
    return max(1, spec.arch.num_kv_heads // attn_tp)
