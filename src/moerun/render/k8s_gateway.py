"""moerun's gateway on Kubernetes, scaled out: config in a ConfigMap, secrets in Secrets.

The ConfigMap holds the gateway config (backends and models) pointing at the deployment's
Service; it names the environment variables that carry the PostgreSQL and Redis URLs, which
come from the `<name>-gateway-stores` Secret (with the master key for /key/*), so every
replica shares one ledger, one set of live keys and one set of limits. The provider keys
are in the `<name>-gateway` Secret. Several replicas run behind one Service, spread over
nodes; a HorizontalPodAutoscaler adds pods on CPU and a PodDisruptionBudget keeps one up.
"""

from __future__ import annotations

import posixpath
from typing import Any

from moerun.core.deploy.deploy_facts import GatewayFacts
from moerun.core.deploy.launch import DeployPlan
from moerun.render.gateway_config import gateway_config
from moerun.render.k8s_pods import labels
from moerun.render.yaml_text import dump

DATABASE_URL_ENV = "MOERUN_DATABASE_URL"
REDIS_URL_ENV = "MOERUN_REDIS_URL"
MASTER_KEY_ENV = "MOERUN_MASTER_KEY"


def stores_secret(plan: DeployPlan) -> str:
    """Name of the Secret with the PostgreSQL and Redis URLs and the master key."""
    return f"{plan.name}-gateway-stores"


def gateway_objects(
    plan: DeployPlan,
    namespace: str,
    facts: GatewayFacts,
    moerun_version: str,
    self_hosted_url: str | None,
) -> list[dict[str, Any]]:
    """ConfigMap, Secrets, Deployment, Service, HorizontalPodAutoscaler, PodDisruptionBudget."""
    name = f"{plan.name}-gateway"
    lab = labels(name, plan.name, "gateway")
    selector = {"app.kubernetes.io/name": name}

    def meta(obj_name: str = name) -> dict[str, Any]:
        return {"name": obj_name, "namespace": namespace, "labels": lab}

    config = gateway_config(plan, self_hosted_url)
    config["database_url_env"] = DATABASE_URL_ENV
    config["redis_url_env"] = REDIS_URL_ENV
    config_dir, config_file = posixpath.split(facts.config_path)
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": meta(),
            "data": {config_file: dump(config)},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": meta(),
            "type": "Opaque",
            # Fill in the provider keys before applying (never commit them).
            "stringData": {m.api_key_env: "" for m in plan.managed},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": meta(stores_secret(plan)),
            "type": "Opaque",
            # Fill in before applying: postgresql+psycopg://user:pass@host:5432/db,
            # redis://:pass@host:6379/0, and a long random master key (empty: no /key/*).
            "stringData": {DATABASE_URL_ENV: "", REDIS_URL_ENV: "", MASTER_KEY_ENV: ""},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta(),
            "spec": {
                "replicas": facts.replicas,
                "selector": {"matchLabels": selector},
                # Add a pod before removing one: no capacity dip during a rollout.
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
                },
                "template": {
                    "metadata": {"labels": lab},
                    "spec": {
                        "containers": [_container(plan, facts, moerun_version, config_dir)],
                        "volumes": [{"name": "config", "configMap": {"name": name}}],
                        # Replicas on different nodes where the cluster allows it.
                        "topologySpreadConstraints": [
                            {
                                "maxSkew": 1,
                                "topologyKey": "kubernetes.io/hostname",
                                "whenUnsatisfiable": "ScheduleAnyway",
                                "labelSelector": {"matchLabels": selector},
                            }
                        ],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta(),
            "spec": {
                "selector": selector,
                "ports": [{"name": "http", "port": facts.port, "targetPort": "http"}],
            },
        },
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": meta(),
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                "minReplicas": facts.replicas,
                "maxReplicas": facts.max_replicas,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {
                                "type": "Utilization",
                                "averageUtilization": facts.target_cpu_percent,
                            },
                        },
                    }
                ],
            },
        },
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": meta(),
            "spec": {"minAvailable": 1, "selector": {"matchLabels": selector}},
        },
    ]


def _container(
    plan: DeployPlan, facts: GatewayFacts, moerun_version: str, config_dir: str
) -> dict[str, Any]:
    argv = ["moerun", "gateway", "--config", facts.config_path]
    argv += ["--host", "0.0.0.0", "--port", str(facts.port)]
    probe = {"httpGet": {"path": facts.health_path, "port": "http"}, "periodSeconds": 10}

    def from_stores(var: str, optional: bool) -> dict[str, Any]:
        ref = {"name": stores_secret(plan), "key": var, "optional": optional}
        return {"name": var, "valueFrom": {"secretKeyRef": ref}}

    return {
        "name": "gateway",
        "image": facts.image_template.format(version=moerun_version),
        "command": argv[:1],
        "args": argv[1:],
        "ports": [{"name": "http", "containerPort": facts.port}],
        "env": [
            from_stores(DATABASE_URL_ENV, False),
            from_stores(REDIS_URL_ENV, False),
            from_stores(MASTER_KEY_ENV, True),
        ],
        # Provider API keys, by the names the config's api_key_env gives.
        "envFrom": [{"secretRef": {"name": f"{plan.name}-gateway", "optional": True}}],
        "resources": {
            "requests": {"cpu": facts.cpu_request, "memory": facts.memory_request},
            "limits": {"memory": facts.memory_limit},
        },
        "volumeMounts": [{"name": "config", "mountPath": config_dir, "readOnly": True}],
        "readinessProbe": probe,
        "livenessProbe": {**probe, "periodSeconds": 30, "failureThreshold": 5},
    }
