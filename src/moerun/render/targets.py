"""The files of each target (shell, compose, k8s) for one DeployPlan, as text in memory."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any

from moerun.core.deploy.deploy_facts import DeployFacts
from moerun.core.deploy.launch import DeployPlan
from moerun.render.compose import compose_services, compose_text
from moerun.render.gateway_config import backends_yaml
from moerun.render.k8s import common_objects, group_objects, router_objects, service_url
from moerun.render.k8s_gateway import gateway_objects, stores_secret
from moerun.render.k8s_inference import INFERENCE_GATEWAY, inference_pool_objects
from moerun.render.shell import NodeCommand, shell_files
from moerun.render.yaml_text import dump_all

TARGETS = ("shell", "compose", "k8s")
BACKENDS_FILE = "gateway-backends.yaml"
SHELL_ADDRESS = "REPLACE-WITH-ENTRY-ADDRESS"


@dataclass(frozen=True, slots=True)
class Rendered:
    """Relative path -> file text, which of them are executable, and every node's command."""

    files: dict[str, str]
    commands: list[NodeCommand]
    executable: frozenset[str] = field(default_factory=frozenset)
    # Every Kubernetes object written (for validation), in file order.
    objects: list[dict[str, Any]] = field(default_factory=list)
    notes: tuple[str, ...] = ()


def render(
    plan: DeployPlan, target: str, facts: DeployFacts, namespace: str, moerun_version: str
) -> Rendered:
    """All files of `target` for `plan`."""
    if target == "shell":
        return _shell(plan)
    if target == "compose":
        return _compose(plan, facts)
    return _k8s(plan, facts, namespace, moerun_version)


def _shell(plan: DeployPlan) -> Rendered:
    files, commands = shell_files(plan)
    url = None
    note = ""
    if plan.groups:
        entry = plan.router.name if plan.router else plan.groups[0].name
        url = f"http://{SHELL_ADDRESS}:{plan.entry_port}/v1"
        note = f"Replace {SHELL_ADDRESS} with the address of {entry} (its node 0)."
    files[BACKENDS_FILE] = backends_yaml(plan, url, note)
    executable = frozenset(n for n in files if n.endswith(".sh"))
    return Rendered(files, commands, executable)


def _compose(plan: DeployPlan, facts: DeployFacts) -> Rendered:
    files: dict[str, str] = {}
    commands: list[NodeCommand] = []
    url = None
    if plan.groups:
        doc, services, url = compose_services(plan, facts.startup, facts.cache_mount_path)
        files["compose.yaml"] = compose_text(doc, plan)
        for svc, role, argv in services:
            commands.append(NodeCommand(svc, role, 0, shlex.join(argv)))
    files[BACKENDS_FILE] = backends_yaml(plan, url, "URL as published on the Compose host.")
    return Rendered(files, commands)


def _k8s(plan: DeployPlan, facts: DeployFacts, namespace: str, moerun_version: str) -> Rendered:
    files: dict[str, str] = {}
    commands: list[NodeCommand] = []
    objects: list[dict[str, Any]] = []
    url = None

    def add(path: str, objs: list[dict[str, Any]], header: str) -> None:
        files[path] = dump_all(objs, header)
        objects.extend(objs)

    if plan.groups:
        add("k8s/00-common.yaml", common_objects(plan, namespace), "Shared: HF token and cache.")
        for i, g in enumerate(plan.groups):
            kind = "LeaderWorkerSet" if g.num_nodes > 1 else "Deployment"
            header = f"{g.name}: {g.role}, {kind} of {g.num_nodes} node(s) x {g.gpus_per_node} GPUs"
            add(f"k8s/1{i}-{g.name}.yaml", group_objects(plan, g, namespace, facts), header)
            for rank in range(g.num_nodes):
                role = g.head if rank == 0 or g.worker is None else g.worker
                commands.append(NodeCommand(g.name, g.role, rank, shlex.join(role.main.argv)))
        entry = plan.groups[0]
        url = service_url(entry.name, namespace, entry.port) + "/v1"
        if plan.router is not None:
            objs, argv = router_objects(plan, namespace)
            add(f"k8s/20-{plan.router.name}.yaml", objs, "Prefill/decode router.")
            commands.append(NodeCommand(plan.router.name, "router", 0, shlex.join(argv)))
            url = service_url(plan.router.name, namespace, plan.router.port) + "/v1"
    gw = gateway_objects(plan, namespace, facts.gateway, moerun_version, url)
    add("k8s/30-gateway.yaml", gw, "moerun gateway: fill in both Secrets first.")
    files[BACKENDS_FILE] = backends_yaml(plan, url, "In-cluster Service URL.")
    image = facts.gateway.image_template.format(version=moerun_version)
    notes = [
        f"gateway image {image} is built from this repository (no registry publishes it)",
        f"fill in MOERUN_DATABASE_URL (PostgreSQL) and MOERUN_REDIS_URL in the Secret "
        f"{stores_secret(plan)}: the {facts.gateway.replicas}+ gateway replicas share the "
        "ledger, live keys and limits through them (and MOERUN_MASTER_KEY for /key/*)",
    ]
    if plan.groups and plan.router is None:
        pool = inference_pool_objects(
            plan, plan.groups[0], namespace, facts.gateway.endpoint_picker_port
        )
        add(
            "k8s/40-inference-pool.yaml",
            pool,
            "Optional: the pool for the Gateway API Inference Extension (needs its CRDs).",
        )
        notes.append(
            f"k8s/40-inference-pool.yaml needs the Gateway API Inference Extension CRDs, a "
            f"Gateway named {INFERENCE_GATEWAY} and an endpoint picker Service "
            f"{plan.name}-epp (e.g. llm-d's inference scheduler); to route through it, point "
            "the gateway backend's base_url at that Gateway. Delete the file to go without"
        )
    if plan.groups:
        notes.append(
            f"the model cache PVC {plan.name}-model-cache is ReadWriteMany: the cluster's "
            "default StorageClass must support it (or set storageClassName)"
        )
        notes.append(f"fill in HF_TOKEN in the Secret {plan.name}-hf-token for gated repos")
    if any(g.num_nodes > 1 for g in plan.groups):
        notes.append("multi-node groups need the LeaderWorkerSet controller (kubernetes-sigs/lws)")
    return Rendered(files, commands, frozenset(), objects, tuple(notes))
