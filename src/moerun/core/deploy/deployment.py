"""A deployment: model, GPUs, format, engine and layout; and why a layout cannot run."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from moerun.core.deploy.engine import Admission, EngineMemory, ReserveModel
from moerun.core.deploy.hardware import GPU
from moerun.core.deploy.mtp import MTP_OFF, Mtp
from moerun.core.deploy.parallel import Parallel, divisors
from moerun.core.model.kv_cache import kv_layout_for
from moerun.core.model.model_spec import ModelSpec

# Compute dtype each weight format needs tensor cores for (int4 is weight-only: its kernels
# dequantize to bf16, so any GPU with bf16 runs it).
FORMAT_COMPUTE = {"bf16": "bf16", "fp8": "fp8", "int4": "bf16", "nvfp4": "fp4", "mxfp4": "fp4"}

# The kinds of layout a calibration can have been measured on, each priced by parts of the
# step model the others do not exercise: one scale-up domain with a single attention rank
# (TP, experts over TP or EP); attention data parallel with expert parallel MoE in one domain
# (per-rank batches, all-to-all); more than one scale-up domain (collectives on the network);
# prefill and decode on separate instances (KV transfer).
LAYOUT_KINDS = ("single-node", "attention-dp", "multi-node", "pd-disaggregated")


def budget_flag_ranks(engine: str, dp: int) -> int:
    """The ranks an engine divides its token-budget flag over: vLLM's --max-num-batched-tokens
    is per engine core (each DP rank); SGLang divides --chunked-prefill-size over its
    attention-DP ranks (`server_args._handle_data_parallelism`: chunked_prefill_size // dp_size)."""
    return dp if engine == "sglang" else 1


@dataclass(frozen=True, slots=True)
class Deployment:
    """One replica of a model on `num_gpus` GPUs (build one, then call `memory_fit(dep)`)."""

    model: ModelSpec
    gpu: GPU
    num_gpus: int
    engine: EngineMemory
    reserve: ReserveModel
    weights: str = "fp8"
    kv_dtype: str = "fp8"
    parallel: Parallel = field(default_factory=Parallel)
    mem_fraction: float | None = None
    max_context: int | None = None
    # MTP speculative decoding: tokens drafted per step and their acceptance (default off).
    mtp: Mtp = MTP_OFF
    max_num_batched_tokens: int | None = None
    # Running sequences per attention-DP rank (vLLM --max-num-seqs; SGLang
    # --max-running-requests is this x DP); None: the engine's own default.
    max_num_seqs: int | None = None
    # SGLang's --enable-mixed-chunk: a prefill batch also runs the running decodes, which
    # take their tokens out of its budget (off by default; plans never set it, `deploy`
    # passes it when a deployment does)
    mixed_chunk: bool = False
    # SGLang's --max-prefill-tokens: the prompt tokens one prefill batch of a scheduler (each
    # attention-DP rank) admits beyond its first request; None: the engine's default (16384),
    # which the default chunk size binds before it
    max_prefill_tokens: int | None = None

    def __post_init__(self) -> None:
        if (self.mixed_chunk or self.max_prefill_tokens is not None) and (
            self.engine.name != "sglang"
        ):
            raise ValueError("mixed chunks and a prefill-token cap are SGLang launch flags")
        if self.max_prefill_tokens is not None and self.max_prefill_tokens < 1:
            raise ValueError("the prefill-token cap must be positive")

    def layout_kind(self, disaggregated: bool = False) -> str:
        """Which of `LAYOUT_KINDS` this deployment is (`disaggregated`: it runs as one side
        of a prefill/decode pair); a layout of several kinds is the one listed last."""
        if disaggregated:
            return "pd-disaggregated"
        if self.num_gpus > max(self.gpu.gpus_per_node, self.gpu.scale_up_domain_gpus or 0):
            return "multi-node"
        return "attention-dp" if self.parallel.dp > 1 else "single-node"

    @property
    def num_nodes(self) -> int:
        """Nodes used: whole nodes once the deployment spans more than one."""
        return max(1, -(-self.num_gpus // self.gpu.gpus_per_node))

    @property
    def effective_mem_fraction(self) -> float:
        """The memory fraction in force (the engine's default when not given)."""
        return (
            self.mem_fraction if self.mem_fraction is not None else self.engine.default_mem_fraction
        )

    @property
    def effective_max_context(self) -> int:
        """The longest sequence the deployment must hold (the model's limit by default)."""
        return (
            self.max_context if self.max_context is not None else self.model.max_position_embeddings
        )

    @property
    def batched_tokens(self) -> int:
        """Tokens per forward pass the engine is sized for (vLLM --max-num-batched-tokens,
        SGLang --chunked-prefill-size): as given, else the engine's default on this GPU."""
        if self.max_num_batched_tokens is not None:
            return self.max_num_batched_tokens
        return self.engine.batch_default(self.gpu).max_num_batched_tokens

    @property
    def _budget_flag_ranks(self) -> int:
        return budget_flag_ranks(self.engine.name, self.parallel.dp)

    @property
    def batched_tokens_flag(self) -> int:
        """The value of the engine's flag that gives each DP rank `batched_tokens` per forward
        pass (what moerun prices), so SGLang's is passed DP times larger."""
        return self.batched_tokens * self._budget_flag_ranks

    def launched_with_budget_flag(self, flag: int | None) -> Deployment:
        """This deployment as the engine runs it when launched with the token-budget flag at
        `flag` (None: the flag left at the engine's default on this GPU, which SGLang divides
        over its DP ranks as it divides a given value)."""
        value = (
            flag if flag is not None else self.engine.batch_default(self.gpu).max_num_batched_tokens
        )
        return replace(self, max_num_batched_tokens=max(1, value // self._budget_flag_ranks))

    @property
    def admission(self) -> Admission | None:
        """SGLang's admission estimate as this deployment runs it (None: no such rule), with
        its attention-DP factor applied."""
        adm = self.engine.admission
        return adm.for_dp(self.parallel.dp) if adm is not None else None

    @property
    def default_max_num_seqs(self) -> int | None:
        """The engine's fixed sequence cap per DP rank on this GPU (None: SGLang sizes it
        from its KV cache, see `max_num_seqs_per_rank`)."""
        return self.engine.batch_default(self.gpu).max_num_seqs

    def max_num_seqs_per_rank(self, kv_tokens_per_rank: int) -> int:
        """Sequences one DP rank runs at once, as the launched engine decides it: the
        deployment's value, else the engine's default (SGLang's from memory and MTP)."""
        if self.max_num_seqs is not None:
            return self.max_num_seqs
        fixed = self.default_max_num_seqs
        if fixed is not None:
            return fixed
        rule = self.engine.running_rule
        assert rule is not None, f"{self.engine.name} has neither a fixed nor a memory rule"
        return rule.per_rank(
            kv_tokens_per_rank, self.effective_max_context, self.parallel.dp, self.mtp.enabled
        )

    @property
    def uses_deepep(self) -> bool:
        """SGLang hands tokens to experts with DeepEP: attention DP with expert parallelism on
        NVIDIA GPUs, as its large-scale EP recipes run it (`deploy` passes
        `--moe-a2a-backend deepep`; DeepEP is NVIDIA-only). Its expert GEMMs are then
        DeepGEMM's, in DeepEP's normal mode for a step in which any rank prefills and its
        low-latency mode otherwise (sglang `DeepEPMode.resolve`, `is_extend_in_batch`
        OR-reduced over the DP ranks)."""
        par = self.parallel
        return (
            self.engine.name == "sglang"
            and par.dp > 1
            and par.ep > 1
            and self.gpu.vendor == "nvidia"
        )

    @property
    def kv_layout(self) -> str:
        """The KV-cache layout the engine uses for `kv_dtype` on this GPU."""
        blackwell = self.gpu.vendor == "nvidia" and self.gpu.supports("fp4")
        return kv_layout_for(self.model, self.kv_dtype, self.engine.name, blackwell)

    @property
    def page_size_tokens(self) -> int:
        """KV page size: 64 tokens for DSA models in both engines."""
        if self.model.arch.indexer is not None:
            return self.engine.page_size_tokens_dsa
        return self.engine.page_size_tokens

    def layout_problems(self) -> list[str]:
        """Reasons this deployment cannot run at all, whatever the memory (empty: none)."""
        return layout_problems(self)


def layout_problems(dep: Deployment) -> list[str]:
    """Why a layout is impossible: divisibility, GPU count, node shape, dtype support."""
    return parallel_problems(dep) + hardware_problems(dep)


def parallel_problems(dep: Deployment) -> list[str]:
    """Problems of the parallel layout itself (another layout may avoid them)."""
    spec, par, n = dep.model, dep.parallel, dep.num_gpus
    reasons: list[str] = []
    if par.num_gpus != n:
        reasons.append(
            f"TP x DP x PP = {par.tp} x {par.dp} x {par.pp} = {par.num_gpus} does not equal "
            f"the {n} GPUs"
        )
    arch = spec.arch
    heads = arch.num_attention_heads
    if heads % par.tp:
        reasons.append(
            f"tensor-parallel size {par.tp} does not divide the {heads} attention heads "
            f"(valid TP sizes: {', '.join(str(d) for d in divisors(heads))})"
        )
    if arch.mla is None and par.tp % arch.num_kv_heads and arch.num_kv_heads % par.tp:
        reasons.append(f"TP {par.tp} and the {arch.num_kv_heads} KV heads must divide one another")
    if (
        heads % par.tp == 0
        and arch.indexer is not None
        and arch.indexer.num_heads % min(par.tp, arch.indexer.num_heads)
    ):
        reasons.append(f"TP {par.tp} does not divide the {arch.indexer.num_heads} indexer heads")
    if par.ep > 1:
        if arch.moe is None:
            reasons.append(f"expert parallelism (EP {par.ep}) needs a MoE model")
        elif arch.moe.num_routed_experts % par.ep:
            reasons.append(
                f"EP {par.ep} does not divide the {arch.moe.num_routed_experts} routed experts"
            )
        if par.moe_group % par.ep:
            reasons.append(f"EP {par.ep} must divide TP x DP = {par.moe_group}")
        if dep.engine.name == "vllm" and par.ep != par.moe_group:
            reasons.append(
                f"vLLM's expert parallelism spans TP x DP = {par.moe_group} GPUs, not {par.ep}"
            )
    if par.pp > arch.num_layers:
        reasons.append(f"PP {par.pp} exceeds the {arch.num_layers} layers")
    return reasons


def hardware_problems(dep: Deployment) -> list[str]:
    """Problems no layout over these GPUs can avoid: node shape, dtype support, MTP, context."""
    spec, gpu, n = dep.model, dep.gpu, dep.num_gpus
    reasons: list[str] = []
    per_node = gpu.gpus_per_node
    if n > per_node and n % per_node:
        reasons.append(
            f"{n} GPUs is not a whole number of {per_node}-GPU {gpu.id} nodes "
            f"({n / per_node:.2f} nodes); multi-node layouts use whole nodes"
        )
    compute = FORMAT_COMPUTE[dep.weights]
    if not gpu.supports(compute):
        reasons.append(
            f"{gpu.name} has no {compute.upper()} tensor cores: {dep.weights} weights cannot run "
            "there (use bf16 or int4 weight-only)"
        )
    if spec.arch.indexer is not None and not gpu.supports("fp8"):
        reasons.append(
            f"DeepSeek Sparse Attention runs its indexer in FP8 (FlashMLA sparse / DeepGEMM "
            f"kernels); {gpu.name} has no FP8 tensor cores"
        )
    if dep.mtp.enabled and spec.arch.num_mtp_layers == 0:
        reasons.append(f"{spec.name} has no MTP layer; run without --mtp")
    if dep.effective_max_context > spec.max_position_embeddings:
        reasons.append(
            f"max context {dep.effective_max_context:,} exceeds the model's "
            f"{spec.max_position_embeddings:,} positions"
        )
    return reasons
