"""Compose target: one Docker Compose file for a deployment that fits on one host.

Engines run from their official images with the whole command as entrypoint, GPUs reserved by
device id (so prefill and decode can share a host), host IPC for NCCL's shared memory, the
Hugging Face cache in a named volume, HF_TOKEN from the environment, and a health check whose
start period covers downloading and loading the checkpoint.
"""

from __future__ import annotations

from typing import Any

from moerun.core.deploy.deploy_facts import StartupFacts
from moerun.core.deploy.launch import HEAD, DeployPlan, EngineGroup, resolve
from moerun.errors import UsageError
from moerun.render.router_args import urls_argv
from moerun.render.yaml_text import comment, dump

CACHE_VOLUME = "model-cache"


def _healthcheck(port: int, path: str, start_s: int) -> dict[str, Any]:
    probe = (
        f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}{path}', timeout=5)"
    )
    return {
        "test": ["CMD", "python3", "-c", probe],
        "interval": "30s",
        "timeout": "10s",
        "retries": 3,
        # Failures before this do not count: the checkpoint may still be downloading.
        "start_period": f"{start_s}s",
        "start_interval": "10s",
    }


def _check_one_host(plan: DeployPlan) -> None:
    for g in plan.groups:
        if g.num_nodes > 1:
            raise UsageError(
                f"{g.name} spans {g.num_nodes} nodes; Compose describes one host: "
                "use --target shell or --target k8s"
            )
    if plan.groups:
        per_host = plan.groups[0].deployment.gpu.gpus_per_node
        needed = sum(g.num_gpus * g.replicas for g in plan.groups)
        if needed > per_host:
            raise UsageError(
                f"{plan.name} needs {needed} GPUs but one {plan.groups[0].deployment.gpu.id} "
                f"host has {per_host}; use --target shell or --target k8s"
            )


def compose_services(
    plan: DeployPlan, startup: StartupFacts, cache_path: str
) -> tuple[dict[str, Any], list[tuple[str, str, tuple[str, ...]]], str | None]:
    """The Compose document, (service, role, command) of each service, the gateway's URL."""
    _check_one_host(plan)
    services: dict[str, Any] = {}
    commands: list[tuple[str, str, tuple[str, ...]]] = []
    next_gpu = 0
    urls: dict[str, list[str]] = {}
    entry_url: str | None = None
    for g in plan.groups:
        for i in range(g.replicas):
            svc = g.name if g.replicas == 1 else f"{g.name}-{i}"
            argv = tuple(resolve(t, svc, 0, svc) for t in g.head.main.argv)
            gpus = [str(n) for n in range(next_gpu, next_gpu + g.num_gpus)]
            next_gpu += g.num_gpus
            services[svc] = _engine_service(g, svc, argv, gpus, startup, cache_path)
            commands.append((svc, g.role, argv))
            urls.setdefault(g.role, []).append(f"http://{svc}:{g.port}")
            if plan.router is None:
                host_port = g.port + i
                services[svc]["ports"] = [f"{host_port}:{g.port}"]
                entry_url = entry_url or f"http://localhost:{host_port}/v1"
    if plan.router is not None:
        r = plan.router
        argv = urls_argv(r, urls["prefill"], urls["decode"])
        services[r.name] = {
            "image": r.image,
            "entrypoint": list(argv),
            "ports": [f"{r.port}:{r.port}"],
            "depends_on": {name: {"condition": "service_healthy"} for name in services},
            "restart": "unless-stopped",
        }
        commands.append((r.name, "router", argv))
        entry_url = f"http://localhost:{r.port}/v1"
    doc: dict[str, Any] = {"name": plan.name, "services": services}
    if plan.groups:
        doc["volumes"] = {CACHE_VOLUME: {}}
    return doc, commands, entry_url


def _engine_service(
    g: EngineGroup,
    svc: str,
    argv: tuple[str, ...],
    gpus: list[str],
    startup: StartupFacts,
    cache_path: str,
) -> dict[str, Any]:
    env = {"HF_HOME": cache_path, "HF_TOKEN": "${HF_TOKEN:-}"}
    env.update({k: resolve(v, svc, 0, svc) for k, v in g.env})
    assert HEAD not in " ".join(argv)
    service: dict[str, Any] = {
        "image": g.image,
        "hostname": svc,
        "entrypoint": list(argv),
        "environment": env,
        "volumes": [f"{CACHE_VOLUME}:{cache_path}"],
        # Host IPC: NCCL and the engines' worker processes share memory through /dev/shm.
        "ipc": "host",
        "ulimits": {"memlock": -1, "stack": 67108864},
    }
    if g.deployment.gpu.vendor == "amd":
        # ROCm in containers: the kfd and dri devices, the video group, and the GPUs this
        # service may use.
        service["devices"] = ["/dev/kfd", "/dev/dri"]
        service["group_add"] = ["video"]
        env["ROCR_VISIBLE_DEVICES"] = ",".join(gpus)
    else:
        device = {"driver": "nvidia", "device_ids": gpus, "capabilities": ["gpu"]}
        service["deploy"] = {"resources": {"reservations": {"devices": [device]}}}
    start_s = startup.limit_s(g.checkpoint_bytes)
    service["healthcheck"] = _healthcheck(g.port, g.health_path, start_s)
    service["restart"] = "unless-stopped"
    return service


def compose_text(doc: dict[str, Any], plan: DeployPlan) -> str:
    """compose.yaml with a short header."""
    header = (
        f"Docker Compose file for {plan.name}, written by `moerun deploy`.\n"
        "Start: HF_TOKEN=... docker compose up -d   (NVIDIA GPUs need the NVIDIA Container "
        "Toolkit)"
    )
    return comment(header) + dump(doc)
