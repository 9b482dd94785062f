"""Serving-engine memory behaviour, as values (numbers come from catalog/data/engines.yaml)."""

from __future__ import annotations

from dataclasses import dataclass

ENGINES = ("vllm", "sglang")


@dataclass(frozen=True, slots=True)
class EngineMemory:
    """How an engine splits GPU memory between weights, its reserve and the KV cache."""

    engine: str
    default_mem_fraction: float
    # vLLM's budget includes activations and non-torch memory; SGLang's static fraction
    # covers weights and KV only, with activations and graphs outside it.
    reserve_inside_budget: bool
    page_size_tokens: int
    page_size_tokens_dsa: int
    default_max_num_batched_tokens: int
    default_max_num_seqs: int


@dataclass(frozen=True, slots=True)
class ReserveModel:
    """moerun's stated assumptions for the memory an engine reserves per GPU."""

    activation_hidden_vectors_per_token: int
    logits_bytes_per_element: int
    cuda_graph_bytes: int
    non_torch_bytes: int
