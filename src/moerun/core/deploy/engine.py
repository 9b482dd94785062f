"""Serving-engine memory and batching behaviour, as values (numbers come from
catalog/data/engines.yaml, with their sources)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from moerun.core.deploy.hardware import GPU

ENGINES = ("vllm", "sglang")


@dataclass(frozen=True, slots=True)
class BatchDefault:
    """One row of an engine's batch defaults by GPU: it applies to GPUs with at least
    `min_memory_gib` of memory whose name does not contain `exclude_name`."""

    min_memory_gib: float
    max_num_batched_tokens: int
    # Sequences per DP rank; None: the engine sizes it from memory (RunningRequestsRule).
    max_num_seqs: int | None
    exclude_name: str | None = None

    def applies_to(self, gpu: GPU) -> bool:
        """Whether this row is the one for `gpu` (rows are tried in order)."""
        if self.exclude_name and self.exclude_name.lower() in gpu.name.lower():
            return False
        return gpu.memory_gib >= self.min_memory_gib


@dataclass(frozen=True, slots=True)
class RunningRequestsRule:
    """SGLang's request limit when `--max-running-requests` is not given: a fixed number with
    speculative decoding; otherwise per worker min(clamp(KV tokens / context length x
    `per_context_length`, floor, ceiling), KV tokens x `kv_token_share`)."""

    speculative: int
    per_context_length: int
    floor: int
    ceiling: int
    kv_token_share: float

    def per_rank(self, kv_tokens_per_rank: int, context_len: int, dp: int, mtp: bool) -> int:
        """Running requests one DP rank admits."""
        if mtp:
            # the global value is split over the attention-DP workers
            return max(1, self.speculative // max(dp, 1))
        by_context = int(kv_tokens_per_rank / max(context_len, 1) * self.per_context_length)
        clamped = min(max(by_context, self.floor), self.ceiling)
        return max(1, min(clamped, int(kv_tokens_per_rank * self.kv_token_share)))


@dataclass(frozen=True, slots=True)
class Admission:
    """SGLang's admission estimate: a running request is expected to need `new_token_ratio` x
    its remaining output tokens (each capped at `clip_max_new_tokens`); the ratio starts at
    `init`, decays each decode step to `init x min_factor` over `decay_steps`, and after a
    retraction becomes (decoded + retract_decode_steps x requests) / max new tokens."""

    init: float
    min_factor: float
    decay_steps: int
    retract_decode_steps: int
    clip_max_new_tokens: int
    # the factor SGLang applies to schedule_conservativeness under attention DP
    dp_attention_conservativeness: float = 1.0

    def for_dp(self, dp: int) -> Admission:
        """The estimate an attention-DP deployment of `dp` ranks runs with (the ratio starts
        at init x the DP factor, capped at 1; its floor and decay follow)."""
        if dp <= 1:
            return self
        return replace(self, init=min(self.init * self.dp_attention_conservativeness, 1.0))

    @property
    def minimum(self) -> float:
        """The floor the ratio decays to."""
        return min(self.init * self.min_factor, 1.0)

    @property
    def decay(self) -> float:
        """The ratio's decrease per decode step."""
        return (self.init - self.minimum) / self.decay_steps


@dataclass(frozen=True, slots=True)
class EngineMemory:
    """How an engine splits GPU memory between weights, its reserve and the KV cache, and
    how it sizes its batches."""

    name: str  # vllm | sglang
    default_mem_fraction: float
    # vLLM's budget includes activations and non-torch memory; SGLang's static fraction
    # covers weights and KV only, with activations and graphs outside it.
    reserve_inside_budget: bool
    page_size_tokens: int
    page_size_tokens_dsa: int
    batch_defaults: tuple[BatchDefault, ...]
    # SGLang only: its memory-sized request limit and its admission estimate.
    running_rule: RunningRequestsRule | None = None
    admission: Admission | None = None

    def batch_default(self, gpu: GPU) -> BatchDefault:
        """The batch defaults the engine picks on `gpu`."""
        for row in self.batch_defaults:
            if row.applies_to(gpu):
                return row
        return self.batch_defaults[-1]


@dataclass(frozen=True, slots=True)
class ReserveModel:
    """moerun's stated assumptions for the memory an engine reserves per GPU."""

    activation_hidden_vectors_per_token: int
    logits_bytes_per_element: int
    cuda_graph_bytes: int
    non_torch_bytes: int
