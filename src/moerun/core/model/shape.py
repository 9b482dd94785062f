"""A model's architecture as config.json states it: attention, indexer and MoE shapes, and
the fields that decide the checkpoint's tensor inventory. Imports nothing else in moerun."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MLA:
    """Multi-head latent attention dimensions (DeepSeek-V2/V3, GLM-5, Kimi K2)."""

    q_lora_rank: int | None
    kv_lora_rank: int
    qk_nope_head_dim: int
    qk_rope_head_dim: int
    v_head_dim: int

    @property
    def qk_head_dim(self) -> int:
        """Query/key head dim: the no-rope part plus the rope part."""
        return self.qk_nope_head_dim + self.qk_rope_head_dim

    @property
    def latent_dim(self) -> int:
        """What the KV cache stores per token and layer: kv_lora_rank + qk_rope_head_dim."""
        return self.kv_lora_rank + self.qk_rope_head_dim


@dataclass(frozen=True, slots=True)
class Indexer:
    """The DSA lightning indexer: scores every past token, attention keeps the top `topk`."""

    num_heads: int
    head_dim: int
    topk: int
    # Per main-model layer: True where the layer runs its own indexer ("full"), False where it
    # reuses the previous full layer's top-k (IndexCache "shared" layers store no indexer).
    layers: tuple[bool, ...]

    @property
    def num_indexer_layers(self) -> int:
        """Main-model layers that run (and cache keys for) an indexer."""
        return sum(self.layers)


@dataclass(frozen=True, slots=True)
class MoE:
    """Mixture-of-experts FFN shape."""

    num_routed_experts: int
    num_experts_per_tok: int
    moe_intermediate_size: int
    # Total intermediate size of the shared expert MLP (0 when there is none).
    shared_intermediate_size: int
    router_bias: bool

    @property
    def expert_params(self) -> int:
        """Parameters of one routed expert (gate, up and down projections) per hidden unit."""
        return 3 * self.moe_intermediate_size


@dataclass(frozen=True, slots=True)
class Architecture:
    """The config.json fields that decide which tensors a checkpoint stores, and their shapes."""

    model_type: str
    hidden_size: int
    vocab_size: int
    num_layers: int
    num_attention_heads: int
    num_kv_heads: int
    head_dim: int
    attention_bias: bool
    qk_norm: bool
    mla: MLA | None
    indexer: Indexer | None
    intermediate_size: int
    moe: MoE | None
    # Per main-model layer: True where the FFN is a MoE block, False where it is dense.
    moe_layers: tuple[bool, ...]
    num_mtp_layers: int
    # Whether each MTP layer stores its own embedding and head copy (None: not known).
    mtp_stores_embed_head: bool | None
    tie_word_embeddings: bool
    mlp_bias: bool

    @property
    def is_moe(self) -> bool:
        """Whether any layer is a mixture of experts."""
        return self.moe is not None and any(self.moe_layers)

    @property
    def num_moe_layers(self) -> int:
        """Main-model layers with a MoE FFN."""
        return sum(self.moe_layers)

    @property
    def attention_kind(self) -> str:
        """ "mla+dsa", "mla", or "gqa" (which includes MHA)."""
        if self.mla is not None:
            return "mla+dsa" if self.indexer is not None else "mla"
        return "gqa"

    def attended_tokens(self, context_len: int) -> int:
        """Tokens one query attends to: DSA caps it at index_topk, dense attention does not."""
        if self.indexer is None:
            return context_len
        return min(context_len, self.indexer.topk)
