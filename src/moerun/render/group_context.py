"""What one engine group's commands are built from (`GroupContext`), and the values both
engines' argv builders (`vllm_args`, `sglang_args`) share."""

from __future__ import annotations

from dataclasses import dataclass

from moerun.core.deploy.deploy_facts import EngineFacts, ParserNames
from moerun.core.deploy.deployment import Deployment
from moerun.core.deploy.engine_flags import FlagSet
from moerun.core.deploy.support import Platform

LISTEN_HOST = "0.0.0.0"


@dataclass(frozen=True, slots=True)
class GroupContext:
    """Everything one engine group's commands are built from."""

    name: str
    role: str  # serve | prefill | decode
    deployment: Deployment
    replicas: int
    version: str
    flags: FlagSet
    facts: EngineFacts
    image: str
    checkpoint: str
    checkpoint_bytes: int
    served_model_name: str
    parsers: ParserNames | None
    # the GPU vendor's additions from the support matrix (ROCm: AITER, block size, backends)
    platform: Platform | None = None

    @property
    def platform_args(self) -> list[str]:
        """Flags the platform's recipes add (empty without a platform)."""
        return list(self.platform.args) if self.platform is not None else []

    @property
    def platform_env(self) -> list[tuple[str, str]]:
        """Environment the platform's recipes set."""
        return list(self.platform.env) if self.platform is not None else []

    @property
    def engine(self) -> str:
        """vllm or sglang."""
        return self.deployment.engine.name

    @property
    def num_nodes(self) -> int:
        """Nodes of one instance."""
        return self.deployment.num_nodes

    @property
    def gpus_per_node(self) -> int:
        """GPUs each node of the instance contributes."""
        return self.deployment.num_gpus // self.num_nodes

    @property
    def kv_cache_dtype(self) -> str:
        """The engine's spelling of the deployment's KV-cache dtype."""
        return self.facts.kv_cache_dtype[self.deployment.kv_dtype]


def common_values(ctx: GroupContext) -> dict[str, str]:
    """Numbers both engines are given explicitly, as strings."""
    dep = ctx.deployment
    return {
        "mem_fraction": f"{dep.effective_mem_fraction:g}",
        "max_context": str(dep.effective_max_context),
        "batched_tokens": str(dep.batched_tokens_flag),
        "port": str(ctx.facts.port),
    }


def whole_nodes_problem(ctx: GroupContext, world: int) -> str | None:
    """Why `world` GPUs per engine rank cannot be placed on whole nodes (None: they can)."""
    per_node = ctx.deployment.gpu.gpus_per_node
    if world <= per_node and per_node % world == 0:
        return None
    if world > per_node and world % per_node == 0:
        return None
    return (
        f"{ctx.name}: one {ctx.engine} rank spans {world} GPUs (TP x PP), which neither "
        f"divides nor fills whole {per_node}-GPU nodes"
    )
