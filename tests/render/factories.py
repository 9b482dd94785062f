"""Factories for deploy rendering tests: every layout the planner can produce, built as groups."""

from __future__ import annotations

import functools
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from moerun.catalog.deploy import load_deploy_facts
from moerun.catalog.flags import flag_versions, load_flags
from moerun.catalog.gpus import get_gpu
from moerun.commands.deploy_plan import build_plan
from moerun.commands.request import DeployOptions, DeployRequest, Part
from moerun.core.deploy.deployment import Deployment
from moerun.core.deploy.launch import DeployPlan, EngineGroup
from moerun.core.deploy.mtp import Mtp
from moerun.core.deploy.parallel import Parallel, candidate_layouts
from moerun.core.model.weights import weight_bytes
from moerun.render.engine_args import engine_group
from moerun.render.group_context import GroupContext
from tests.conftest import make_deployment

GPUS = ("h200_sxm", "b200_sxm")
GPU_COUNTS = (8, 16, 32)
ENGINES = ("vllm", "sglang")
ROLES = ("serve", "prefill", "decode")
CHECK_ROLES = ROLES


def _k8s_schemas() -> Path:
    """The shared k8s schemas (../shared/data/k8s, see its SOURCES.md: read, never copied).

    They live beside the checkout; a clone made elsewhere (a fresh clone in /tmp) finds them
    beside the checkout it was cloned from, or where MOERUN_K8S_SCHEMAS points."""
    repo = Path(__file__).resolve().parents[2]
    candidates = [repo.parent / "shared" / "data" / "k8s"]
    if env := os.environ.get("MOERUN_K8S_SCHEMAS"):
        candidates.insert(0, Path(env))
    origin = subprocess.run(
        ["git", "-C", str(repo), "config", "--get", "remote.origin.url"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if origin and Path(origin).is_dir():
        candidates.append(Path(origin).resolve().parent / "shared" / "data" / "k8s")
    for c in candidates:
        if (c / "compose-spec.json").is_file():
            return c
    raise FileNotFoundError(
        "the k8s schemas (shared/data/k8s) are not beside this checkout or its origin; "
        "set MOERUN_K8S_SCHEMAS to their folder"
    )


K8S_SCHEMAS = _k8s_schemas()


@dataclass(frozen=True, slots=True)
class Case:
    """One layout of one engine release on one GPU type."""

    gpu: str
    num_gpus: int
    parallel: Parallel
    engine: str
    version: str

    @property
    def label(self) -> str:
        return f"{self.engine}-{self.version}-{self.gpu}-{self.num_gpus}-{self.parallel.describe()}"


def planner_layouts() -> Iterator[tuple[str, int, Parallel]]:
    """Every (gpu, num_gpus, layout) `candidate_layouts` produces for 8/16/32 GPUs."""
    for gpu in GPUS:
        for n in GPU_COUNTS:
            for par in candidate_layouts(n, get_gpu(gpu).gpus_per_node):
                yield gpu, n, par


def all_cases() -> list[Case]:
    """Planner layouts x engines x every release with a flag fixture, minus impossible ones."""
    cases = []
    for gpu, n, par in planner_layouts():
        for engine in ENGINES:
            if deployment(gpu, n, par, engine).layout_problems():
                continue
            for version in flag_versions(engine):
                cases.append(Case(gpu, n, par, engine, version))
    return cases


@functools.cache
def _base(gpu: str, n: int, engine: str, model: str = "glm-5.1") -> Deployment:
    return make_deployment(model, gpu=gpu, num_gpus=n, engine=engine)


def deployment(
    gpu: str, n: int, par: Parallel, engine: str, mtp: int = 0, model: str = "glm-5.1"
) -> Deployment:
    """`model` (GLM-5.1) in FP8 on `n` GPUs with layout `par`."""
    return replace(_base(gpu, n, engine, model), parallel=par, mtp=Mtp(mtp))


@functools.cache
def checkpoint_bytes() -> int:
    base = _base("h200_sxm", 8, "vllm")
    return weight_bytes(base.model, base.weights).total_bytes


def group_for(case: Case, role: str = "serve", mtp: int = 0) -> EngineGroup:
    """The engine group of `case` (no fit check: rendering works for any valid layout)."""
    facts = load_deploy_facts()
    flags = load_flags(case.engine, case.version)
    efacts = facts.engines[case.engine]
    dep = deployment(case.gpu, case.num_gpus, case.parallel, case.engine, mtp)
    ctx = GroupContext(
        name="glm5" if role == "serve" else f"glm5-{role}",
        role=role,
        deployment=dep,
        replicas=1,
        version=case.version,
        flags=flags,
        facts=efacts,
        image=efacts.image(case.version) or "",
        checkpoint="zai-org/GLM-5.1-FP8",
        checkpoint_bytes=checkpoint_bytes(),
        served_model_name="zai-org/GLM-5.1-FP8",
        parsers=facts.parsers_for("glm-5.1", case.engine),
    )
    return engine_group(ctx)


def plan_of(groups: tuple[EngineGroup, ...], name: str = "glm5") -> DeployPlan:
    """A bare DeployPlan around already-built groups."""
    return DeployPlan(
        name=name,
        public_model="glm-5.1",
        served_model_name="zai-org/GLM-5.1-FP8",
        groups=groups,
        router=None,
        managed=(),
        jurisdiction=None,
        region=None,
        notes=(),
    )


def plan_for(
    parts: list[tuple[str, Deployment, int]],
    *,
    version: str | None = None,
    managed: tuple[()] = (),
    name: str = "glm5",
) -> DeployPlan:
    """A DeployPlan of explicit-layout parts (role, deployment, instances)."""
    request = DeployRequest(
        parts=tuple(Part(role, dep, True, n) for role, dep, n in parts), managed=managed
    )
    return build_plan(request, DeployOptions(target="k8s", name=name, engine_version=version))
