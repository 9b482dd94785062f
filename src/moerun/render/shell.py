"""Shell target: one script per node of every engine group, and one for the PD router.

Each script exports what the engine needs and `exec`s the engine. A multi-node group's scripts
take the head node's address from $HEAD_ADDR; the router's take $PREFILL_ADDR_<i> and
$DECODE_ADDR_<i>. Node ranks are written in literally, one script per node.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from moerun.core.deploy.launch import HEAD, POD_IP, DeployPlan, EngineGroup, NodeRole
from moerun.render.router_args import urls_argv
from moerun.render.shell_words import command_lines, shell_words

SHELL_HEAD = "${HEAD_ADDR}"
SHELL_POD_IP = "${POD_IP}"


@dataclass(frozen=True, slots=True)
class NodeCommand:
    """The long-running command of one node, for the summary and --json."""

    group: str
    role: str
    node: int
    command: str


def node_role(group: EngineGroup, rank: int) -> NodeRole:
    """The commands node `rank` runs."""
    return group.head if rank == 0 or group.worker is None else group.worker


def node_words(group: EngineGroup, rank: int) -> list[list[str]]:
    """Shell words of each command of node `rank`."""
    return [
        shell_words(s.argv, SHELL_HEAD, SHELL_POD_IP, lambda k: str(rank * k))
        for s in node_role(group, rank).steps
    ]


def group_script(group: EngineGroup, rank: int) -> str:
    """The script of node `rank` of one instance of `group`."""
    role = node_role(group, rank)
    uses = " ".join(t for s in role.steps for t in s.argv) + " " + " ".join(v for _, v in group.env)
    dep = group.deployment
    lines = [
        "#!/usr/bin/env bash",
        f"# moerun deploy: {group.name} ({group.role}), node {rank} of {group.num_nodes}, "
        f"{group.gpus_per_node} GPUs on this node",
        f"# {dep.parallel.describe()} on {dep.num_gpus} x {dep.gpu.name}; needs "
        f"{group.engine}=={group.engine_version}"
        + (f" (or run it in {group.image})" if group.image else ""),
        "# Gated models need HF_TOKEN in the environment; weights go to the Hugging Face cache.",
    ]
    if group.replicas > 1:
        lines.append(f"# Start {group.replicas} instances of this group, each on its own nodes.")
    lines.append("set -euo pipefail")
    if HEAD in uses:
        lines.append(f': "${{HEAD_ADDR:?set HEAD_ADDR to the address of node 0 of {group.name}}}"')
    if POD_IP in uses:
        lines.append("POD_IP=\"${POD_IP:-$(hostname -I | awk '{print $1}')}\"")
    for key, value in group.env:
        word = shell_words([value], SHELL_HEAD, SHELL_POD_IP, str)[0]
        lines.append(f"export {key}={word}")
    body = "\n".join(lines) + "\n"
    steps = node_words(group, rank)
    for words in steps[:-1]:
        body += command_lines(words)
    return body + command_lines(steps[-1], prefix="exec ")


def router_script(plan: DeployPlan) -> tuple[str, tuple[str, ...]]:
    """The router script and its command (addresses from $PREFILL_ADDR_i / $DECODE_ADDR_i)."""
    assert plan.router is not None
    by_role = {g.role: g for g in plan.groups}
    prefill, decode = by_role["prefill"], by_role["decode"]
    names = [f"PREFILL_ADDR_{i}" for i in range(prefill.replicas)]
    names += [f"DECODE_ADDR_{i}" for i in range(decode.replicas)]
    p_urls = [f"http://${{{n}}}:{prefill.port}" for n in names[: prefill.replicas]]
    d_urls = [f"http://${{{n}}}:{decode.port}" for n in names[prefill.replicas :]]
    argv = urls_argv(plan.router, p_urls, d_urls)
    # URLs hold variable references: double quotes keep them expandable.
    words = [f'"{t}"' if "${" in t else shlex.quote(t) for t in argv]
    header = [
        "#!/usr/bin/env bash",
        f"# moerun deploy: {plan.router.name}, the prefill/decode router "
        f"({plan.router.package}=={plan.router.version}, or run it in {plan.router.image})",
        "set -euo pipefail",
        *(f': "${{{v}:?set {v} to the head address of that instance}}"' for v in names),
    ]
    return "\n".join(header) + "\n" + command_lines(words, prefix="exec "), argv


def shell_files(plan: DeployPlan) -> tuple[dict[str, str], list[NodeCommand]]:
    """File name -> script text, and the command of every node."""
    files: dict[str, str] = {}
    commands: list[NodeCommand] = []
    for group in plan.groups:
        for rank in range(group.num_nodes):
            files[f"{group.name}-node{rank}.sh"] = group_script(group, rank)
            main = " ".join(node_words(group, rank)[-1])
            commands.append(NodeCommand(group.name, group.role, rank, main))
    if plan.router is not None:
        text, argv = router_script(plan)
        files[f"{plan.router.name}.sh"] = text
        line = text.split("exec ", 1)[1].replace(" \\\n    ", " ").strip()
        commands.append(NodeCommand(plan.router.name, "router", 0, line))
        assert argv
    return files, commands
