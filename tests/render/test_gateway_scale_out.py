"""`moerun deploy --target k8s` renders the gateway scaled out: several replicas with an
autoscaler, PostgreSQL and Redis URLs from a Secret, and the self-hosted pool as an
InferencePool with its HTTPRoute, validated against the CRD schemas in ../shared/data/k8s."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import pytest
import yaml

from moerun.catalog.deploy import load_deploy_facts
from moerun.errors import GatewayConfigError
from moerun.render.targets import render
from moerun.serve.gateway.config import parse_config
from tests.render.test_manifests import CRDS, PLANS, crd_validator, validate_k8s

PG = "postgresql+psycopg://gw:pw@pg.db:5432/usage"
REDIS = "redis://:pw@redis.db:6379/0"


def _objects(key: str) -> list[dict[str, Any]]:
    return render(PLANS[key], "k8s", load_deploy_facts(), "llm", "0.1.0").objects


def _one(objs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


@pytest.mark.parametrize("key", ["vllm-1node", "hybrid", "managed", "vllm-pd"])
def test_gateway_is_several_replicas_with_an_autoscaler(key: str) -> None:
    objs = _objects(key)
    name = f"{PLANS[key].name}-gateway"
    dep = _one(objs, "Deployment", name)
    hpa = _one(objs, "HorizontalPodAutoscaler", name)
    pdb = _one(objs, "PodDisruptionBudget", name)
    replicas = dep["spec"]["replicas"]
    assert replicas >= 2
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": name,
    }
    assert hpa["spec"]["minReplicas"] == replicas < hpa["spec"]["maxReplicas"]
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert 0 < metric["resource"]["target"]["averageUtilization"] <= 100
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    # A CPU utilization target is relative to the request: without one the HPA cannot act.
    assert container["resources"]["requests"]["cpu"]
    # The PDB and the Service select exactly the gateway's pods.
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    svc = _one(objs, "Service", name)
    assert svc["spec"]["selector"].items() <= pod_labels.items()


def test_store_urls_come_from_a_secret_and_the_config_reads_them() -> None:
    objs = _objects("hybrid")
    plan = PLANS["hybrid"]
    name = f"{plan.name}-gateway"
    (container,) = _one(objs, "Deployment", name)["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
    stores = _one(objs, "Secret", f"{plan.name}-gateway-stores")
    for var in ("MOERUN_DATABASE_URL", "MOERUN_REDIS_URL", "MOERUN_MASTER_KEY"):
        assert env[var]["name"] == stores["metadata"]["name"]
        assert env[var]["key"] in stores["stringData"]
        assert stores["stringData"][env[var]["key"]] == ""  # to be filled in, never a value
    assert env["MOERUN_DATABASE_URL"]["optional"] is False
    # The ConfigMap's config, as the gateway loads it with the Secret's values in its env.
    cm = _one(objs, "ConfigMap", name)
    (text,) = cm["data"].values()
    assert "postgresql" not in text and "redis://" not in text
    secrets = {"MOERUN_DATABASE_URL": PG, "MOERUN_REDIS_URL": REDIS, "TOGETHER_API_KEY": "x"}
    config = parse_config(text, secrets)
    assert config.database_url == PG and config.redis_url == REDIS
    assert config.master_key is None
    with pytest.raises(GatewayConfigError, match="MOERUN_DATABASE_URL is not set"):
        parse_config(text, {"MOERUN_REDIS_URL": REDIS, "TOGETHER_API_KEY": "x"})
    both = yaml.safe_load(text) | {"database_url": "sqlite:///x.db"}
    with pytest.raises(GatewayConfigError, match="not both"):
        parse_config(yaml.safe_dump(both), secrets)


@pytest.mark.parametrize("key", ["vllm-1node", "vllm-tp-pp", "hybrid"])
def test_self_hosted_pool_is_an_inference_pool_with_a_route(key: str) -> None:
    objs = _objects(key)
    plan = PLANS[key]
    group = plan.groups[0]
    pool = _one(objs, "InferencePool", f"{plan.name}-pool")
    route = _one(objs, "HTTPRoute", f"{plan.name}-pool")
    for obj in (pool, route):
        validate_k8s(obj)  # the CRD schemas from ../shared/data/k8s
    assert pool["apiVersion"] == "inference.networking.k8s.io/v1"
    # It selects the engine's serving pods (the leaders of a multi-node group) on their port.
    workload = _one(objs, "LeaderWorkerSet" if group.num_nodes > 1 else "Deployment", group.name)
    if group.num_nodes > 1:
        template = workload["spec"]["leaderWorkerTemplate"]["leaderTemplate"]
        assert (
            pool["spec"]["selector"]["matchLabels"]["leaderworkerset.sigs.k8s.io/worker-index"]
            == "0"
        )
    else:
        template = workload["spec"]["template"]
    selector = dict(pool["spec"]["selector"]["matchLabels"])
    selector.pop("leaderworkerset.sigs.k8s.io/worker-index", None)
    assert selector.items() <= template["metadata"]["labels"].items()
    (engine,) = template["spec"]["containers"]
    http_port = next(p["containerPort"] for p in engine["ports"] if p["name"] == "http")
    assert pool["spec"]["targetPorts"] == [{"number": http_port}]
    epp = pool["spec"]["endpointPickerRef"]
    assert epp["port"]["number"] == 9002 and epp["name"] == f"{plan.name}-epp"
    (rule,) = route["spec"]["rules"]
    assert rule["backendRefs"] == [
        {
            "group": "inference.networking.k8s.io",
            "kind": "InferencePool",
            "name": f"{plan.name}-pool",
        }
    ]
    assert route["spec"]["parentRefs"][0]["kind"] == "Gateway"


def test_no_pool_for_pd_or_managed_only() -> None:
    for key in ("vllm-pd", "managed"):
        kinds = {o["kind"] for o in _objects(key)}
        assert "InferencePool" not in kinds and "HTTPRoute" not in kinds


def test_crd_schemas_reject_bad_pools_and_routes() -> None:
    objs = _objects("vllm-1node")
    pool = next(o for o in objs if o["kind"] == "InferencePool")
    route = next(o for o in objs if o["kind"] == "HTTPRoute")
    bad_pools = [copy.deepcopy(pool) for _ in range(3)]
    del bad_pools[0]["spec"]["targetPorts"]
    bad_pools[1]["spec"]["targetPorts"] = [{"number": 70000}]
    bad_pools[2]["spec"]["extensionRef"] = {"name": "x"}  # the v1alpha2 spelling
    bad_route = copy.deepcopy(route)
    bad_route["spec"]["rules"][0]["backendRefs"][0]["weight"] = -1
    validator = crd_validator(CRDS[("inference.networking.k8s.io/v1", "InferencePool")])
    for bad in bad_pools:
        with pytest.raises(jsonschema.ValidationError):
            validator.validate(bad)
    with pytest.raises(jsonschema.ValidationError):
        validate_k8s(bad_route)
