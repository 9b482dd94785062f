"""What a deployment runs, engine-neutral enough for every target (shell, Compose, Kubernetes).

An `EngineGroup` is one engine instance spread over `num_nodes` nodes (a head node and
identical worker nodes), started `replicas` times. Values a command only learns where it runs
are placeholders that each target resolves: `HEAD` (address of the group's head node),
`POD_IP` (this node's own address) and `rank_token(scale)` (this node's rank within the
group times `scale`).
"""

from __future__ import annotations

from dataclasses import dataclass

from moerun.core.deploy.deployment import Deployment
from moerun.core.deploy.engine_flags import FlagSet

HEAD = "@HEAD@"
POD_IP = "@POD_IP@"


def rank_token(scale: int = 1) -> str:
    """Placeholder for node_rank * scale (the head node is rank 0)."""
    return "@RANK@" if scale == 1 else f"@RANK*{scale}@"


def resolve(token: str, head: str, rank: int, pod_ip: str = POD_IP) -> str:
    """A token with its placeholders replaced by a head address, node rank and own address."""
    out = token.replace(HEAD, head).replace(POD_IP, pod_ip)
    while "@RANK" in out:
        start = out.index("@RANK")
        end = out.index("@", start + 1)
        inner = out[start + 1 : end]
        scale = int(inner.split("*")[1]) if "*" in inner else 1
        out = out[:start] + str(rank * scale) + out[end + 1 :]
    return out


@dataclass(frozen=True, slots=True)
class Step:
    """One command a node runs. Earlier steps run to completion; the last one stays up.

    `package` names the flag fixture that validates argv (None for helper commands such as
    `ray start`, whose flags moerun does not extract).
    """

    argv: tuple[str, ...]
    package: str | None


@dataclass(frozen=True, slots=True)
class NodeRole:
    """The commands of the head node, or of every worker node, of one group."""

    steps: tuple[Step, ...]
    serves_http: bool

    @property
    def main(self) -> Step:
        """The long-running command."""
        return self.steps[-1]


@dataclass(frozen=True, slots=True)
class EngineGroup:
    """One engine instance over `num_nodes` nodes of `gpus_per_node` GPUs, `replicas` times."""

    name: str
    role: str  # serve | prefill | decode
    engine: str
    engine_version: str
    image: str  # "" when no image is known (shell target on hosts that bring their own)
    deployment: Deployment
    replicas: int
    num_nodes: int
    gpus_per_node: int
    head: NodeRole
    worker: NodeRole | None
    env: tuple[tuple[str, str], ...]
    port: int
    health_path: str
    checkpoint: str
    checkpoint_bytes: int
    pod_annotations: tuple[tuple[str, str], ...] = ()
    # Extra ports other groups connect to (SGLang's PD bootstrap server), name -> port.
    extra_ports: tuple[tuple[str, int], ...] = ()

    @property
    def num_gpus(self) -> int:
        """GPUs of one instance."""
        return self.num_nodes * self.gpus_per_node


@dataclass(frozen=True, slots=True)
class RouterGroup:
    """The prefill/decode router in front of the prefill and decode groups."""

    name: str
    engine: str
    package: str
    version: str
    image: str
    launcher: tuple[str, ...]
    pd_flag: str
    policy: str
    port: int
    # SGLang's router pairs each prefill URL with that server's bootstrap port.
    bootstrap_port: int | None
    # The flags of this router release: every command written for it is checked against them.
    flags: FlagSet


@dataclass(frozen=True, slots=True)
class ManagedBackend:
    """A managed API the gateway may send traffic to (from a plan's managed or hybrid option)."""

    name: str
    provider: str
    model: str
    base_url: str
    api_key_env: str


@dataclass(frozen=True, slots=True)
class DeployPlan:
    """Everything one `moerun deploy` writes files for."""

    name: str
    public_model: str
    served_model_name: str | None
    groups: tuple[EngineGroup, ...]
    router: RouterGroup | None
    managed: tuple[ManagedBackend, ...]
    jurisdiction: str | None
    region: str | None
    notes: tuple[str, ...]

    @property
    def entry_port(self) -> int | None:
        """Port of the self-hosted entry point (router or the single engine group)."""
        if self.router is not None:
            return self.router.port
        return self.groups[0].port if self.groups else None
