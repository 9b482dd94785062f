"""What a model is: its architecture read from config.json, and its exact parameter counts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from moerun.core.model.tensors import COMPONENTS, TensorGroup


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
class ModelSpec:
    """An LLM architecture as sized by moerun; build it with `ModelSpec.from_hf(config)`."""

    name: str
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
    max_position_embeddings: int
    # The checkpoint's own weight format ("bf16" or "fp8") and its unconverted modules.
    checkpoint_format: str
    modules_to_not_convert: tuple[str, ...] | None
    tensors: tuple[TensorGroup, ...]

    @classmethod
    def from_hf(cls, config: dict[str, Any], name: str | None = None) -> ModelSpec:
        """Parse a Hugging Face config.json dict; raises ConfigError on what it cannot size."""
        from moerun.core.model.hf_config import spec_from_hf

        return spec_from_hf(config, name)

    # ----- parameters ---------------------------------------------------------------------

    @property
    def is_moe(self) -> bool:
        """Whether any layer is a mixture of experts."""
        return self.moe is not None and any(self.moe_layers)

    @property
    def num_moe_layers(self) -> int:
        """Main-model layers with a MoE FFN."""
        return sum(self.moe_layers)

    @property
    def total_params_main(self) -> int:
        """Parameters of the main model (no MTP layers): the number model cards quote."""
        return sum(t.numel for t in self.tensors if not t.mtp)

    @property
    def mtp_params(self) -> int:
        """Parameters stored in the MTP layers (with embedding/head copies if stored)."""
        return sum(t.numel for t in self.tensors if t.mtp)

    @property
    def total_params_stored(self) -> int:
        """Parameters as stored in the checkpoint: main model plus MTP layers."""
        return self.total_params_main + self.mtp_params

    @property
    def inactive_expert_params(self) -> int:
        """Routed-expert parameters a token does not use (experts not in its top-k)."""
        if self.moe is None:
            return 0
        per_layer_unused = self.moe.num_routed_experts - self.moe.num_experts_per_tok
        one_expert = self.moe.expert_params * self.hidden_size
        return per_layer_unused * one_expert * self.num_moe_layers

    @property
    def active_params(self) -> int:
        """Active per token, main model, counting input embedding and head (GLM-5: 41.78B)."""
        return self.total_params_main - self.inactive_expert_params

    @property
    def embedding_params(self) -> int:
        """Input-embedding parameters of the main model."""
        return self.breakdown()["embedding"]

    @property
    def head_params(self) -> int:
        """Output-head parameters (0 when tied to the embedding)."""
        return self.breakdown()["head"]

    @property
    def active_params_no_embedding(self) -> int:
        """Active per token without the input embedding (a table lookup, not a matmul)."""
        return self.active_params - self.embedding_params

    @property
    def active_params_compute(self) -> int:
        """Active per token without embedding and head: the transformer body alone."""
        return self.active_params_no_embedding - self.head_params

    def breakdown(self) -> dict[str, int]:
        """Parameters per component; MTP layers are counted under "mtp"."""
        parts = dict.fromkeys((*COMPONENTS, "mtp"), 0)
        for t in self.tensors:
            parts["mtp" if t.mtp else t.component] += t.numel
        return parts

    # ----- attention ----------------------------------------------------------------------

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
