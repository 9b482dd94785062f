"""Generated manifests validate: Kubernetes objects against the Kubernetes 1.31 OpenAPI schema
(kubernetes-validate, strict: no unknown fields), LeaderWorkerSets against the LWS CRD's schema,
Compose files against the Compose specification schema. Also the details users expect."""

from __future__ import annotations

import copy
import functools
import json
import re
import subprocess
from dataclasses import replace
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from moerun.catalog.deploy import load_deploy_facts
from moerun.core.deploy.launch import DeployPlan, ManagedBackend
from moerun.core.deploy.parallel import Parallel
from moerun.render.targets import render
from tests.render.factories import K8S_SCHEMAS, deployment, plan_for

K8S_VERSION = "1.31.0"
QWEN = "qwen3-30b-a3b"
GIB = 2**30


def _strict(schema: Any) -> Any:
    """The CRD schema with unknown fields refused where the API server would prune them."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@functools.cache
def crd_validator(file: str, version: str = "v1") -> jsonschema.protocols.Validator:
    """A CRD's schema (one version of it), strict as the API server's pruning."""
    crd = yaml.load(
        (K8S_SCHEMAS / file).read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    )
    (v,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    schema = _strict(v["schema"]["openAPIV3Schema"])
    # metadata is validated by the API server itself; the CRD leaves it open.
    return jsonschema.Draft7Validator(schema)


def lws_validator() -> jsonschema.protocols.Validator:
    return crd_validator("leaderworkerset.x-k8s.io_leaderworkersets.yaml")


CRDS = {
    ("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet"): (
        "leaderworkerset.x-k8s.io_leaderworkersets.yaml"
    ),
    ("inference.networking.k8s.io/v1", "InferencePool"): (
        "inference.networking.k8s.io_inferencepools.yaml"
    ),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): "gateway.networking.k8s.io_httproutes.yaml",
}


@functools.cache
def compose_validator() -> jsonschema.protocols.Validator:
    schema = json.loads((K8S_SCHEMAS / "compose-spec.json").read_text())
    # It declares draft-07 as "https://json-schema.org/draft-07/schema" (no '#'), a spelling
    # jsonschema does not look up by itself.
    assert "draft-07" in schema["$schema"]
    return jsonschema.Draft7Validator(schema)


@functools.cache
def k8s_validator(kind: str, api_version: str) -> jsonschema.protocols.Validator:
    """kubernetes_validate.validate(strict=True) for one kind, built once (it re-reads the
    schema files on every call, ~14 ms; every layout's objects are validated here)."""
    from kubernetes_validate.utils import schema_contents
    from referencing import Registry, Resource

    group = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    folder = f"kubernetes-json-schema/v{K8S_VERSION}-local-strict"
    schema = schema_contents(f"{folder}/{kind.lower()}-{group}.json", K8S_VERSION)
    defs = schema_contents(f"{folder}/_definitions.json", K8S_VERSION)
    registry = Resource.from_contents(defs) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.Draft202012Validator(schema, registry=registry)


def validate_k8s(obj: dict[str, Any]) -> None:
    if obj["kind"] == "LeaderWorkerSet":
        assert obj["apiVersion"] == "leaderworkerset.x-k8s.io/v1"
        lws_validator().validate(obj)
    elif (obj["apiVersion"], obj["kind"]) in CRDS:
        crd_validator(CRDS[(obj["apiVersion"], obj["kind"])]).validate(obj)
    else:
        k8s_validator(obj["kind"], obj["apiVersion"]).validate(obj)


MANAGED = ManagedBackend("together", "together", "zai-org/GLM-5.1", "https://api.together.xyz/v1",
                         "TOGETHER_API_KEY")  # fmt: skip


def plans() -> dict[str, DeployPlan]:
    """Representative deployments: each engine, one and several nodes, PD, hybrid, managed."""
    P = Parallel
    h, b = "h200_sxm", "b200_sxm"
    out = {
        "vllm-1node": plan_for([("serve", deployment(h, 8, P(tp=8), "vllm"), 2)]),
        "sglang-1node-mtp": plan_for([("serve", deployment(b, 8, P(tp=8), "sglang", 3), 1)]),
        "vllm-tp-pp": plan_for([("serve", deployment(h, 16, P(tp=8, pp=2), "vllm"), 1)]),
        "vllm-ray-dp": plan_for([("serve", deployment(h, 32, P(tp=16, dp=2), "vllm"), 1)]),
        "vllm-dp-ep": plan_for([("serve", deployment(h, 16, P(tp=1, dp=16, ep=16), "vllm"), 1)]),
        "sglang-dp-ep": plan_for([("serve", deployment(h, 16, P(tp=8, dp=2, ep=16), "sglang"), 1)]),
        "vllm-pd": plan_for(
            [
                ("prefill", deployment(h, 8, P(tp=8), "vllm"), 1),
                ("decode", deployment(h, 16, P(tp=1, dp=16, ep=16), "vllm", 3), 2),
            ]
        ),
        "sglang-pd-old": plan_for(
            [
                ("prefill", deployment(h, 8, P(tp=8), "sglang"), 2),
                ("decode", deployment(h, 16, P(tp=8, dp=2, ep=16), "sglang"), 1),
            ],
            version="0.5.21",
        ),
    }
    one = plan_for([("serve", deployment(h, 8, P(tp=8), "vllm"), 1)])
    out["hybrid"] = replace(one, managed=(MANAGED,))
    out["managed"] = replace(one, groups=(), served_model_name=None, managed=(MANAGED,))
    return out


PLANS = plans()


@pytest.mark.parametrize("key", sorted(PLANS))
def test_k8s_objects_validate(key: str) -> None:
    rendered = render(PLANS[key], "k8s", load_deploy_facts(), "llm", "0.1.0")
    kinds = [o["kind"] for o in rendered.objects]
    for obj in rendered.objects:
        if (obj["apiVersion"], obj["kind"]) in CRDS:
            validate_k8s(obj)
        else:  # the package's own entry point, as documented
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    # What was validated is what was written.
    written = [d for t in rendered.files.values() if t for d in yaml.safe_load_all(t) if d]
    assert [o for o in written if "kind" in o] == rendered.objects
    gateway = {"ConfigMap", "Secret", "Deployment", "Service", "HorizontalPodAutoscaler"}
    assert gateway | {"PodDisruptionBudget"} <= set(kinds)
    if PLANS[key].groups:
        assert "PersistentVolumeClaim" in kinds
    if PLANS[key].router is not None:
        assert {"ServiceAccount", "Role", "RoleBinding"} <= set(kinds)


def test_validators_reject_bad_objects() -> None:
    rendered = render(PLANS["vllm-tp-pp"], "k8s", load_deploy_facts(), "llm", "0.1.0")
    lws = next(o for o in rendered.objects if o["kind"] == "LeaderWorkerSet")
    bad = copy.deepcopy(lws)
    bad["spec"]["leaderWorkerTemplate"]["sizee"] = 2
    with pytest.raises(jsonschema.ValidationError):
        lws_validator().validate(bad)
    deploy = next(o for o in rendered.objects if o["kind"] == "Deployment")
    bad = copy.deepcopy(deploy)
    bad["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["paht"] = "/"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSION, strict=True)
    compose = render(PLANS["sglang-1node-mtp"], "compose", load_deploy_facts(), "llm", "0.1.0")
    doc = yaml.safe_load(compose.files["compose.yaml"])
    next(iter(doc["services"].values()))["entrypointt"] = ["x"]
    with pytest.raises(jsonschema.ValidationError):
        compose_validator().validate(doc)


@pytest.mark.parametrize("key", ["sglang-1node-mtp", "hybrid", "managed"])
def test_compose_validates(key: str) -> None:
    rendered = render(PLANS[key], "compose", load_deploy_facts(), "llm", "0.1.0")
    if not PLANS[key].groups:
        assert "compose.yaml" not in rendered.files
        return
    doc = yaml.safe_load(rendered.files["compose.yaml"])
    compose_validator().validate(doc)
    svc = next(iter(doc["services"].values()))
    assert svc["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    assert svc["ipc"] == "host" and svc["healthcheck"]["test"][0] == "CMD"


def test_compose_pd_on_one_host_splits_the_gpus() -> None:
    h = "h200_sxm"
    plan = plan_for(
        [
            ("prefill", deployment(h, 4, Parallel(tp=4), "sglang", model=QWEN), 1),
            ("decode", deployment(h, 4, Parallel(tp=4), "sglang", model=QWEN), 1),
        ],
        name="small",
    )
    rendered = render(plan, "compose", load_deploy_facts(), "llm", "0.1.0")
    doc = yaml.safe_load(rendered.files["compose.yaml"])
    compose_validator().validate(doc)
    ids = [
        s["deploy"]["resources"]["reservations"]["devices"][0]["device_ids"]
        for s in doc["services"].values()
        if "deploy" in s
    ]
    assert ids == [["0", "1", "2", "3"], ["4", "5", "6", "7"]]
    router = doc["services"]["small-router"]
    assert "--pd-disaggregation" in router["entrypoint"]
    assert set(router["depends_on"]) == {"small-prefill", "small-decode"}


def test_engine_pods_have_what_users_expect() -> None:
    facts = load_deploy_facts()
    plan = PLANS["vllm-tp-pp"]
    group = plan.groups[0]
    rendered = render(plan, "k8s", facts, "llm", "0.1.0")
    lws = next(o for o in rendered.objects if o["kind"] == "LeaderWorkerSet")
    leader = lws["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["spec"]
    worker = lws["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]
    c = leader["containers"][0]
    start = c["startupProbe"]
    # Long enough to download ~750 GB at the assumed rate, then load.
    assert group.checkpoint_bytes > 700e9
    assert start["failureThreshold"] * start["periodSeconds"] >= (
        group.checkpoint_bytes / facts.startup.download_bytes_per_s
    )
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"]["path"] == "/health"
    assert "startupProbe" not in worker["containers"][0]  # headless: no HTTP server
    for spec in (leader, worker):
        vols = {v["name"]: v for v in spec["volumes"]}
        assert vols["dshm"]["emptyDir"]["medium"] == "Memory"
        assert "persistentVolumeClaim" in vols["model-cache"]
        env = {e["name"]: e for e in spec["containers"][0]["env"]}
        assert env["HF_TOKEN"]["valueFrom"]["secretKeyRef"]["key"] == "HF_TOKEN"
    script = c["args"][0]
    assert "--master-addr ${POD_IP}" in script and "--node-rank 0" in script
    worker_script = worker["containers"][0]["args"][0]
    assert "--master-addr ${LWS_LEADER_ADDRESS}" in worker_script
    assert "--node-rank ${LWS_WORKER_INDEX}" in worker_script
    pvc = next(o for o in rendered.objects if o["kind"] == "PersistentVolumeClaim")
    assert int(pvc["spec"]["resources"]["requests"]["storage"][:-2]) * GIB > group.checkpoint_bytes


def test_pd_router_discovers_leaders_and_sglang_bootstrap() -> None:
    rendered = render(PLANS["sglang-pd-old"], "k8s", load_deploy_facts(), "llm", "0.1.0")
    router = next(
        o for o in rendered.objects
        if o["kind"] == "Deployment" and o["metadata"]["name"].endswith("-router")
    )  # fmt: skip
    args = router["spec"]["template"]["spec"]["containers"][0]["args"]
    assert (
        "--service-discovery" in args
        and args[args.index("--service-discovery-namespace") + 1] == "llm"
    )
    decode_sel = args[
        args.index("--decode-selector") + 1 : args.index("--service-discovery-namespace")
    ]
    assert "leaderworkerset.sigs.k8s.io/worker-index=0" in decode_sel
    prefill = next(
        o for o in rendered.objects
        if o["kind"] == "Deployment" and o["metadata"]["name"].endswith("-prefill")
    )  # fmt: skip
    annotations = prefill["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {"sglang.ai/bootstrap-port": "8998"}


def test_container_scripts_are_valid_sh() -> None:
    scripts = []
    for plan in PLANS.values():
        for obj in render(plan, "k8s", load_deploy_facts(), "llm", "0.1.0").objects:
            text = yaml.safe_dump(obj)
            if "/bin/sh" not in text:
                continue
            lwt = obj["spec"]["leaderWorkerTemplate"]
            for tmpl in (lwt["leaderTemplate"], lwt["workerTemplate"]):
                container = tmpl["spec"]["containers"][0]
                assert container["command"] == ["/bin/sh", "-c"]
                scripts.append(container["args"][0])
    assert len(scripts) >= 10
    for script in scripts:
        subprocess.run(["sh", "-n", "-c", script], check=True)


def test_every_layout_validates() -> None:
    from moerun.render.k8s import group_objects
    from tests.render.factories import ROLES, all_cases, group_for, plan_of

    facts = load_deploy_facts()
    kinds = set()
    for i, case in enumerate(all_cases()):
        group = group_for(case, ROLES[i % len(ROLES)], mtp=3 * (i % 2))
        for obj in group_objects(plan_of((group,)), group, "llm", facts):
            validate_k8s(obj)
            kinds.add(obj["kind"])
    assert kinds == {"Deployment", "LeaderWorkerSet", "Service"}
    bad = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": {"prots": []}}
    with pytest.raises(jsonschema.ValidationError):
        validate_k8s(bad)
