"""What a model is: its architecture read from config.json, and its exact parameter counts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from moerun.core.model.architecture import build_tensors
from moerun.core.model.hf_config import read_hf_config
from moerun.core.model.shape import MLA, Indexer, MoE
from moerun.core.model.tensors import COMPONENTS, TensorGroup


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
        hf = read_hf_config(config, name)
        arch = hf.architecture
        return cls(
            name=hf.name,
            model_type=arch.model_type,
            hidden_size=arch.hidden_size,
            vocab_size=arch.vocab_size,
            num_layers=arch.num_layers,
            num_attention_heads=arch.num_attention_heads,
            num_kv_heads=arch.num_kv_heads,
            head_dim=arch.head_dim,
            attention_bias=arch.attention_bias,
            qk_norm=arch.qk_norm,
            mla=arch.mla,
            indexer=arch.indexer,
            intermediate_size=arch.intermediate_size,
            moe=arch.moe,
            moe_layers=arch.moe_layers,
            num_mtp_layers=arch.num_mtp_layers,
            mtp_stores_embed_head=arch.mtp_stores_embed_head,
            tie_word_embeddings=arch.tie_word_embeddings,
            max_position_embeddings=hf.max_position_embeddings,
            checkpoint_format=hf.checkpoint_format,
            modules_to_not_convert=hf.modules_to_not_convert,
            tensors=build_tensors(arch),
        )

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
