"""Pod templates of engine groups: GPUs, /dev/shm, model cache, HF token, probes.

Probes: a startup probe holds liveness and readiness back until the engine answers /health
for the first time. A liveness probe alone would kill a pod still downloading ~750 GB of
weights; the startup limit is derived from the checkpoint size (StartupFacts.limit_s).
"""

from __future__ import annotations

from typing import Any

from moerun.core.deploy.deploy_facts import StartupFacts
from moerun.core.deploy.launch import POD_IP, EngineGroup, NodeRole
from moerun.render.shell_words import command_lines, shell_words

MANAGED_BY = {"app.kubernetes.io/managed-by": "moerun"}
LWS_INDEX_LABEL = "leaderworkerset.sigs.k8s.io/worker-index"
# Workers reach the leader by the DNS name LWS gives it; the leader itself binds its own pod IP
# (ZeroMQ, which vLLM's data-parallel coordinator uses, cannot bind to a DNS name).
LWS_HEAD = "${LWS_LEADER_ADDRESS}"
OWN_IP = "${POD_IP}"


def labels(name: str, part_of: str, role: str) -> dict[str, str]:
    """Labels of every object of one component."""
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/part-of": part_of,
        "app.kubernetes.io/component": role,
        **MANAGED_BY,
    }


def http_probes(path: str, port: str, startup_threshold: int, period_s: int) -> dict[str, Any]:
    """startup, readiness and liveness probes on `path`."""

    def probe(period: int, failures: int, timeout: int) -> dict[str, Any]:
        return {
            "httpGet": {"path": path, "port": port},
            "periodSeconds": period,
            "failureThreshold": failures,
            "timeoutSeconds": timeout,
        }

    return {
        # failureThreshold x periodSeconds >= download + load time of the checkpoint.
        "startupProbe": probe(period_s, startup_threshold, 5),
        "readinessProbe": probe(10, 3, 5),
        "livenessProbe": probe(30, 5, 10),
    }


def _pod_ip(name: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}


def _env(group: EngineGroup, hf_secret: str, cache_path: str) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {
            "name": "HF_TOKEN",
            # optional: public checkpoints start without the Secret.
            "valueFrom": {"secretKeyRef": {"name": hf_secret, "key": "HF_TOKEN", "optional": True}},
        },
        {"name": "HF_HOME", "value": cache_path},
    ]
    if group.num_nodes > 1:
        env.append(_pod_ip("POD_IP"))
    for key, value in group.env:
        if value == POD_IP:
            env.append(_pod_ip(key))
        else:
            assert "@" not in value, value
            env.append({"name": key, "value": value})
    return env


def command(role: NodeRole, multi_node: bool, is_head: bool) -> dict[str, list[str]]:
    """`command`/`args` of the container: plain argv, or `sh -c` when ranks are computed."""
    steps = role.steps
    if not multi_node and len(steps) == 1:
        argv = list(steps[0].argv)
        return {"command": argv[:1], "args": argv[1:]}

    def rank(scale: int) -> str:
        return "${LWS_WORKER_INDEX}" if scale == 1 else f"$((LWS_WORKER_INDEX * {scale}))"

    script = "set -eu\n"  # a failed `ray start` must not go on to start the engine
    for i, step in enumerate(steps):
        words = shell_words(step.argv, OWN_IP if is_head else LWS_HEAD, OWN_IP, rank)
        script += command_lines(words, prefix="exec " if i == len(steps) - 1 else "", indent="  ")
    return {"command": ["/bin/sh", "-c"], "args": [script]}


def pod_spec(
    group: EngineGroup,
    role: NodeRole,
    *,
    hf_secret: str,
    cache_claim: str,
    cache_path: str,
    shm_size_gb: int,
    startup: StartupFacts,
    gpu_resource: str,
) -> dict[str, Any]:
    """The pod spec of the head (role = group.head) or of a worker node."""
    multi_node = group.num_nodes > 1
    gpus = str(group.gpus_per_node)
    ports = [{"name": "http", "containerPort": group.port}]
    ports += [{"name": name, "containerPort": port} for name, port in group.extra_ports]
    container: dict[str, Any] = {
        "name": "engine",
        "image": group.image,
        **command(role, multi_node, role is group.head),
        "env": _env(group, hf_secret, cache_path),
        "ports": ports if role.serves_http else [],
        "resources": {"limits": {gpu_resource: gpus}, "requests": {gpu_resource: gpus}},
        "volumeMounts": [
            {"name": "dshm", "mountPath": "/dev/shm"},
            {"name": "model-cache", "mountPath": cache_path},
        ],
    }
    if not container["ports"]:
        del container["ports"]
    if role.serves_http:
        threshold = startup.failure_threshold(group.checkpoint_bytes)
        container.update(http_probes(group.health_path, "http", threshold, startup.probe_period_s))
    if multi_node or group.role != "serve":
        # RDMA (NCCL over InfiniBand, NIXL/Mooncake KV transfer) needs to pin memory.
        container["securityContext"] = {"capabilities": {"add": ["IPC_LOCK"]}}
    return {
        "containers": [container],
        "volumes": [
            {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": f"{shm_size_gb}Gi"}},
            {"name": "model-cache", "persistentVolumeClaim": {"claimName": cache_claim}},
        ],
    }
