"""What a model is: its architecture read from config.json, and its exact parameter counts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from moerun.core.model.architecture import build_tensors
from moerun.core.model.hf_config import read_hf_config
from moerun.core.model.shape import Architecture
from moerun.core.model.tensors import COMPONENTS, TensorGroup


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """An LLM architecture as sized by moerun; build it with `ModelSpec.from_hf(config)`."""

    name: str
    # The config.json fields that decide the tensors and their shapes, held once.
    arch: Architecture
    max_position_embeddings: int
    # The checkpoint's own weight format ("bf16" or "fp8") and its unconverted modules.
    checkpoint_format: str
    modules_to_not_convert: tuple[str, ...] | None
    # Built from `arch` once, by `from_hf`.
    tensors: tuple[TensorGroup, ...]

    @classmethod
    def from_hf(cls, config: dict[str, Any], name: str | None = None) -> ModelSpec:
        """Parse a Hugging Face config.json dict; raises ConfigError on what it cannot size."""
        hf = read_hf_config(config, name)
        return cls(
            name=hf.name,
            arch=hf.architecture,
            max_position_embeddings=hf.max_position_embeddings,
            checkpoint_format=hf.checkpoint_format,
            modules_to_not_convert=hf.modules_to_not_convert,
            tensors=build_tensors(hf.architecture),
        )

    # ----- parameters ---------------------------------------------------------------------

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
        arch = self.arch
        if arch.moe is None:
            return 0
        per_layer_unused = arch.moe.num_routed_experts - arch.moe.num_experts_per_tok
        one_expert = arch.moe.expert_params * arch.hidden_size
        return per_layer_unused * one_expert * arch.num_moe_layers

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
