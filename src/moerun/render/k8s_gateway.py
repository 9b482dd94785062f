"""moerun's gateway on Kubernetes: config in a ConfigMap, provider keys in a Secret.

The ConfigMap holds the gateway config (backends and models) pointing at the deployment's
Service; the Secret holds one empty entry per managed provider's `api_key_env`, to be filled
in; the Deployment reads both and serves on its own Service, probed on /health.
"""

from __future__ import annotations

import posixpath
from typing import Any

from moerun.core.deploy.deploy_facts import GatewayFacts
from moerun.core.deploy.launch import DeployPlan
from moerun.render.gateway_config import gateway_config
from moerun.render.k8s_pods import labels
from moerun.render.yaml_text import dump


def gateway_objects(
    plan: DeployPlan,
    namespace: str,
    facts: GatewayFacts,
    moerun_version: str,
    self_hosted_url: str | None,
) -> list[dict[str, Any]]:
    """ConfigMap, Secret, Deployment and Service of the gateway."""
    name = f"{plan.name}-gateway"
    lab = labels(name, plan.name, "gateway")

    def meta() -> dict[str, Any]:
        return {"name": name, "namespace": namespace, "labels": lab}

    config_dir, config_file = posixpath.split(facts.config_path)
    argv = ["moerun", "gateway", "--config", facts.config_path]
    argv += ["--host", "0.0.0.0", "--port", str(facts.port)]
    probe = {"httpGet": {"path": facts.health_path, "port": "http"}, "periodSeconds": 10}
    container: dict[str, Any] = {
        "name": "gateway",
        "image": facts.image_template.format(version=moerun_version),
        "command": argv[:1],
        "args": argv[1:],
        "ports": [{"name": "http", "containerPort": facts.port}],
        # Provider API keys, by the names the config's api_key_env gives.
        "envFrom": [{"secretRef": {"name": name, "optional": True}}],
        "volumeMounts": [{"name": "config", "mountPath": config_dir, "readOnly": True}],
        "readinessProbe": probe,
        "livenessProbe": {**probe, "periodSeconds": 30, "failureThreshold": 5},
    }
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": meta(),
            "data": {config_file: dump(gateway_config(plan, self_hosted_url))},
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
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta(),
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
                "template": {
                    "metadata": {"labels": lab},
                    "spec": {
                        "containers": [container],
                        "volumes": [{"name": "config", "configMap": {"name": name}}],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta(),
            "spec": {
                "selector": {"app.kubernetes.io/name": name},
                "ports": [{"name": "http", "port": facts.port, "targetPort": "http"}],
            },
        },
    ]
