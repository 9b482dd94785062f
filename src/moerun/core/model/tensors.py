"""The checkpoint as tensor groups: what is stored, its shape, and how engines place it."""

from __future__ import annotations

import math
from dataclasses import dataclass

# Components of the per-component parameter breakdown, in display order.
COMPONENTS = (
    "embedding",
    "attention",
    "indexer",
    "dense_mlp",
    "routed_experts",
    "shared_experts",
    "router",
    "norms",
    "head",
)

# How an engine places a tensor across GPUs (vLLM and SGLang agree on these):
#   vocab          VocabParallelEmbedding / ParallelLMHead: split across the attention TP group
#   attn           head-sharded attention projections (q_b, kv_b, o, q/k/v): split across
#                  attention TP
#   kv_heads       GQA k/v projection: split across attention TP up to num_kv_heads,
#                  replicated beyond
#   attn_replicated  MLA down-projections (q_a, kv_a), the DSA indexer, attention norms: every GPU
#   dense          dense MLP and shared experts: split across the whole TP group
#   expert         routed experts: split across every GPU of the stage (by EP or by TP)
#   replicated     router gate, residual norms: every GPU
SHARD_KINDS = ("vocab", "attn", "kv_heads", "attn_replicated", "dense", "expert", "replicated")


@dataclass(frozen=True, slots=True)
class TensorGroup:
    """`count` identical tensors of one shape (one per routed expert, or a single tensor)."""

    name: str
    shape: tuple[int, ...]
    component: str
    shard: str
    layer: int | None = None
    count: int = 1
    # A 2-D Linear weight [out, in] that weight-quantization formats may convert.
    is_linear: bool = False
    # Stored in fp32 in the released checkpoints (the router's score-correction bias).
    fp32: bool = False
    # Belongs to a multi-token-prediction (MTP / nextn) layer.
    mtp: bool = False

    @property
    def numel(self) -> int:
        """Elements over all `count` tensors."""
        return math.prod(self.shape) * self.count

    @property
    def module(self) -> str:
        """The module name, as quantization configs list it (the name without `.weight`)."""
        for suffix in (".weight", ".bias", ".e_score_correction_bias"):
            if self.name.endswith(suffix):
                return self.name[: -len(suffix)]
        return self.name


def linear(
    name: str,
    out_features: int,
    in_features: int,
    component: str,
    shard: str,
    *,
    layer: int | None,
    mtp: bool,
    count: int = 1,
) -> TensorGroup:
    """A Linear weight [out, in]."""
    return TensorGroup(
        name=f"{name}.weight",
        shape=(out_features, in_features),
        component=component,
        shard=shard,
        layer=layer,
        count=count,
        is_linear=True,
        mtp=mtp,
    )


def vector(
    name: str,
    size: int,
    component: str,
    shard: str,
    *,
    layer: int | None,
    mtp: bool,
    fp32: bool = False,
) -> TensorGroup:
    """A 1-D tensor: a norm weight or bias."""
    return TensorGroup(
        name=name,
        shape=(size,),
        component=component,
        shard=shard,
        layer=layer,
        fp32=fp32,
        mtp=mtp,
    )
