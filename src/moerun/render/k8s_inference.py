"""The self-hosted pool as a Gateway API Inference Extension `InferencePool` with an
`HTTPRoute`, so an existing endpoint picker (llm-d's inference scheduler) can route by KV
cache and queue inside the pool.

The pool selects the pods that serve the group's HTTP API on its port; its endpoint picker is
the Service `<name>-epp`, which moerun does not deploy (install it with the project's
InferencePool chart or llm-d's guides). The route attaches to the Gateway `inference-gateway`.
"""

from __future__ import annotations

from typing import Any

from moerun.core.deploy.launch import DeployPlan, EngineGroup
from moerun.render.k8s import head_selector, meta
from moerun.render.k8s_pods import labels

INFERENCE_GATEWAY = "inference-gateway"  # the name in the Inference Extension's guides


def pool_name(plan: DeployPlan) -> str:
    """Name of the InferencePool (and its HTTPRoute)."""
    return f"{plan.name}-pool"


def inference_pool_objects(
    plan: DeployPlan, group: EngineGroup, namespace: str, endpoint_picker_port: int
) -> list[dict[str, Any]]:
    """InferencePool over the group's serving pods, and the HTTPRoute to it."""
    name = pool_name(plan)
    lab = labels(name, plan.name, "inference-pool")
    pool = {
        "apiVersion": "inference.networking.k8s.io/v1",
        "kind": "InferencePool",
        "metadata": meta(name, namespace, lab),
        "spec": {
            "selector": {"matchLabels": head_selector(group)},
            "targetPorts": [{"number": group.port}],
            "endpointPickerRef": {
                "name": f"{plan.name}-epp",
                "port": {"number": endpoint_picker_port},
                # No picker, no routing: fail closed rather than spray requests at random.
                "failureMode": "FailClose",
            },
        },
    }
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": meta(name, namespace, lab),
        "spec": {
            "parentRefs": [
                {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": INFERENCE_GATEWAY}
            ],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                    "backendRefs": [
                        {
                            "group": "inference.networking.k8s.io",
                            "kind": "InferencePool",
                            "name": name,
                        }
                    ],
                }
            ],
        },
    }
    return [pool, route]
