"""Kubernetes target: engine groups, the PD router, the model cache and the HF token Secret.

A group on one node is a Deployment (one pod per instance) with a Service; a group spanning
nodes is a LeaderWorkerSet (leaderworkerset.x-k8s.io/v1, one leader pod and `size - 1`
workers per instance) with a Service that selects the leaders, where the HTTP server runs.
LWS injects LWS_LEADER_ADDRESS and LWS_WORKER_INDEX, from which every worker derives its rank.
"""

from __future__ import annotations

import math
from typing import Any

from moerun.core.deploy.deploy_facts import DeployFacts
from moerun.core.deploy.launch import DeployPlan, EngineGroup
from moerun.render.k8s_pods import LWS_INDEX_LABEL, labels, pod_spec
from moerun.render.router_args import discovery_argv


def meta(name: str, namespace: str, lab: dict[str, str]) -> dict[str, Any]:
    """Object metadata."""
    return {"name": name, "namespace": namespace, "labels": lab}


def common_objects(plan: DeployPlan, namespace: str) -> list[dict[str, Any]]:
    """The HF token Secret and the model-cache PersistentVolumeClaim."""
    lab = labels(plan.name, plan.name, "shared")
    biggest = max(g.checkpoint_bytes for g in plan.groups)
    # Room for the checkpoint plus a quarter for a second revision or a partial download.
    size_gib = math.ceil(biggest * 1.25 / 2**30)
    return [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": meta(hf_secret(plan), namespace, lab),
            "type": "Opaque",
            # Fill in a Hugging Face token for gated checkpoints (or delete this object and
            # `kubectl create secret generic <name> --from-literal=HF_TOKEN=...`).
            "stringData": {"HF_TOKEN": ""},
        },
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": meta(cache_claim(plan), namespace, lab),
            "spec": {
                # Every node of every replica reads the same cache.
                "accessModes": ["ReadWriteMany"],
                "resources": {"requests": {"storage": f"{size_gib}Gi"}},
            },
        },
    ]


def hf_secret(plan: DeployPlan) -> str:
    """Name of the Secret holding HF_TOKEN."""
    return f"{plan.name}-hf-token"


def cache_claim(plan: DeployPlan) -> str:
    """Name of the model-cache PVC."""
    return f"{plan.name}-model-cache"


def group_objects(
    plan: DeployPlan, group: EngineGroup, namespace: str, facts: DeployFacts
) -> list[dict[str, Any]]:
    """Deployment or LeaderWorkerSet of one group, and its Service."""
    lab = labels(group.name, plan.name, group.role)
    kw: dict[str, Any] = {
        "hf_secret": hf_secret(plan),
        "cache_claim": cache_claim(plan),
        "cache_path": facts.cache_mount_path,
        "shm_size_gb": facts.shm_size_gb,
        "startup": facts.startup,
        "gpu_resource": facts.k8s_gpu_resources[group.deployment.gpu.vendor],
    }
    pod_meta: dict[str, Any] = {"labels": lab}
    if group.pod_annotations:
        pod_meta["annotations"] = dict(group.pod_annotations)
    selector = {"app.kubernetes.io/name": group.name}
    if group.num_nodes == 1:
        workload: dict[str, Any] = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta(group.name, namespace, lab),
            "spec": {
                "replicas": group.replicas,
                "selector": {"matchLabels": selector},
                # Never run two copies of a GPU-filling pod during a rollout.
                "strategy": {"type": "Recreate"},
                "template": {"metadata": pod_meta, "spec": pod_spec(group, group.head, **kw)},
            },
        }
        service_selector = selector
    else:
        assert group.worker is not None
        workload = {
            "apiVersion": "leaderworkerset.x-k8s.io/v1",
            "kind": "LeaderWorkerSet",
            "metadata": meta(group.name, namespace, lab),
            "spec": {
                "replicas": group.replicas,
                "leaderWorkerTemplate": {
                    "size": group.num_nodes,
                    # One engine instance: a pod that restarts restarts its whole group.
                    "restartPolicy": "RecreateGroupOnPodRestart",
                    "leaderTemplate": {
                        "metadata": pod_meta,
                        "spec": pod_spec(group, group.head, **kw),
                    },
                    "workerTemplate": {
                        "metadata": {"labels": lab},
                        "spec": pod_spec(group, group.worker, **kw),
                    },
                },
            },
        }
        service_selector = {**selector, LWS_INDEX_LABEL: "0"}
    ports = [{"name": "http", "port": group.port, "targetPort": "http"}]
    ports += [{"name": n, "port": p, "targetPort": n} for n, p in group.extra_ports]
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(group.name, namespace, lab),
        "spec": {"selector": service_selector, "ports": ports},
    }
    return [workload, service]


def head_selector(group: EngineGroup) -> dict[str, str]:
    """Labels of the pods that serve a group's HTTP API."""
    sel = {"app.kubernetes.io/name": group.name}
    if group.num_nodes > 1:
        sel[LWS_INDEX_LABEL] = "0"
    return sel


def router_objects(
    plan: DeployPlan, namespace: str
) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
    """The router Deployment, Service and the RBAC it needs to watch pods; and its command."""
    r = plan.router
    assert r is not None
    by_role = {g.role: g for g in plan.groups}
    argv = discovery_argv(
        r,
        head_selector(by_role["prefill"]),
        head_selector(by_role["decode"]),
        namespace,
        by_role["decode"].port,
    )
    lab = labels(r.name, plan.name, "router")
    probe = {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 10}
    container = {
        "name": "router",
        "image": r.image,
        "command": list(argv[:1]),
        "args": list(argv[1:]),
        "ports": [{"name": "http", "containerPort": r.port}],
        "readinessProbe": probe,
        "livenessProbe": {**probe, "periodSeconds": 30, "failureThreshold": 5},
    }
    objs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(r.name, namespace, lab)},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": meta(r.name, namespace, lab),
            # Service discovery: the router watches prefill and decode pods.
            "rules": [
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta(r.name, namespace, lab),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": r.name},
            "subjects": [{"kind": "ServiceAccount", "name": r.name, "namespace": namespace}],
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta(r.name, namespace, lab),
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app.kubernetes.io/name": r.name}},
                "template": {
                    "metadata": {"labels": lab},
                    "spec": {"serviceAccountName": r.name, "containers": [container]},
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta(r.name, namespace, lab),
            "spec": {
                "selector": {"app.kubernetes.io/name": r.name},
                "ports": [{"name": "http", "port": r.port, "targetPort": "http"}],
            },
        },
    ]
    return objs, argv


def service_url(name: str, namespace: str, port: int) -> str:
    """In-cluster URL of a Service."""
    return f"http://{name}.{namespace}.svc.cluster.local:{port}"
