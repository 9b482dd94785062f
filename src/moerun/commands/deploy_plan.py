"""Request + catalog -> DeployPlan: choose layouts, check fit, build and check every command."""

from __future__ import annotations

import re
from dataclasses import replace

from moerun.catalog.deploy import load_deploy_facts
from moerun.catalog.flags import load_flags
from moerun.catalog.models import model_index
from moerun.catalog.support import load_support
from moerun.commands.request import DeployOptions, DeployRequest, Part
from moerun.core.deploy.default_layout import resolve_layout
from moerun.core.deploy.deployment import Deployment
from moerun.core.deploy.launch import DeployPlan, EngineGroup, RouterGroup
from moerun.core.deploy.memory_fit import memory_fit
from moerun.core.deploy.support import support_for
from moerun.core.model.weights import weight_bytes
from moerun.errors import LayoutError, UsageError
from moerun.render.engine_args import engine_group
from moerun.render.group_context import GroupContext
from moerun.render.router_args import router_group


def build_plan(request: DeployRequest, options: DeployOptions) -> DeployPlan:
    """Everything to write for `request`; LayoutError/UsageError say why it cannot run."""
    facts = load_deploy_facts()
    parts = tuple(_settle(p) for p in request.parts)
    engines = {p.deployment.engine.name for p in parts}
    if len(engines) > 1:
        raise UsageError("prefill and decode must run the same engine")
    models = {p.deployment.model.name for p in parts}
    if len(models) > 1:
        raise UsageError("prefill and decode must serve the same model")
    notes: list[str] = []
    base = options.name or (_default_name(parts[0].deployment) if parts else "managed")
    name = dns_name(base)
    groups: list[EngineGroup] = []
    router: RouterGroup | None = None
    served: str | None = None
    public = parts[0].deployment.model.name if parts else request.managed[0].model
    if parts:
        engine = parts[0].deployment.engine.name
        flags = load_flags(engine, options.engine_version)
        efacts = facts.engines[engine]
        checkpoint = _checkpoint(parts[0].deployment, options)
        served = options.served_model_name or checkpoint
        parsers = facts.parsers_for(parts[0].deployment.model.name, engine)
        if parsers is None:
            notes.append(
                f"no tool-call / reasoning parser is known for {public} on {engine}: "
                "tool calls come back as plain text"
            )
        vendor = parts[0].deployment.gpu.vendor
        support = load_support()
        platform = support.platform_for(parts[0].deployment)
        platform_image = None
        if platform is not None:
            cited = {s.id: s for s in support.sources}
            refs = "; ".join(cited[c].ref for c in platform.sources if c in cited)
            notes.append(f"{vendor} platform: {platform.note} [{refs}]")
            if platform.image:
                platform_image = platform.image.format(version=flags.version)
        for part in parts:
            verdict = support_for(support, part.deployment, part.role != "serve")
            if not verdict.verified:
                notes.append(f"support: {verdict.status} - " + "; ".join(verdict.reasons))
        image = options.image or platform_image or efacts.image(flags.version, vendor)
        if image is None and options.target != "shell":
            raise UsageError(
                f"moerun knows no official {engine} image for {vendor} GPUs; pass --image "
                f"(a build of {engine} {flags.version} for them)"
            )
        if image is None:
            notes.append(f"no official {engine} image for {vendor} GPUs: install it on the hosts")
        elif options.image is None and platform_image is not None and platform is not None:
            notes.append(f"image {image}: {platform.image_note}")
        elif options.image is None:
            notes.append(f"image {image}: {efacts.image_note}")
        for part in parts:
            dep = part.deployment
            ctx = GroupContext(
                name=name if part.role == "serve" else dns_name(f"{name}-{part.role}"),
                role=part.role,
                deployment=dep,
                replicas=part.instances,
                version=flags.version,
                flags=flags,
                facts=efacts,
                image=image or "",
                checkpoint=checkpoint,
                checkpoint_bytes=weight_bytes(dep.model, dep.weights).total_bytes,
                served_model_name=served,
                parsers=parsers,
                platform=platform,
            )
            groups.append(engine_group(ctx))
        if any(p.role != "serve" for p in parts):
            rfacts = facts.routers[engine]
            rflags = load_flags(rfacts.package)
            bootstrap = efacts.ports.get("disagg_bootstrap_port") if engine == "sglang" else None
            router = router_group(
                dns_name(f"{name}-router"), rfacts, rflags, flags.version, bootstrap
            )
            notes.append(f"router image {router.image}: {rfacts.image_note}")
        if any(g.worker is not None and len(g.head.steps) > 1 for g in groups):
            notes.append(
                "vLLM runs these DP ranks on a Ray cluster: start the workers' `ray start` "
                "before the head's `vllm serve` can place every rank"
            )
    return DeployPlan(
        name=name,
        public_model=public,
        served_model_name=served,
        groups=tuple(groups),
        router=router,
        managed=request.managed,
        jurisdiction=options.jurisdiction,
        region=options.region,
        notes=tuple(notes),
    )


def _settle(part: Part) -> Part:
    """The part with its layout chosen (best layout when none was given) and checked."""
    resolved = resolve_layout(part.deployment, part.explicit_layout)
    dep = resolved.deployment
    if resolved.source == "fallback":
        fit = memory_fit(dep)
        why = "; ".join(fit.reasons) or "no layout over these GPUs fits"
        raise LayoutError(f"{_describe(dep)} cannot run: {why} (see `moerun fit` for the details)")
    problems = dep.layout_problems()
    if problems:
        raise LayoutError(f"{_describe(dep)}: " + "; ".join(problems))
    fit = memory_fit(dep)
    if not fit.fits:
        raise LayoutError(f"{_describe(dep)} does not fit: " + "; ".join(fit.reasons))
    return replace(part, deployment=dep)


def _describe(dep: Deployment) -> str:
    return (
        f"{dep.model.name} on {dep.num_gpus} x {dep.gpu.id} ({dep.weights}, "
        f"{dep.engine.name}, {dep.parallel.describe()})"
    )


def _checkpoint(dep: Deployment, options: DeployOptions) -> str:
    if options.hf_repo:
        return options.hf_repo
    entry = model_index().get(dep.model.name)
    repo = entry.checkpoint(dep.weights) if entry is not None else None
    if repo is None:
        raise UsageError(
            f"no published {dep.weights} checkpoint of {dep.model.name} is known; "
            "name the Hugging Face repo (or a local path) with --hf-repo"
        )
    return repo


def _default_name(dep: Deployment) -> str:
    return f"{dep.model.name.rsplit('/', 1)[-1].removesuffix('.json')}-{dep.gpu.id}"


def dns_name(text: str) -> str:
    """A Kubernetes-safe name (RFC 1123 label, <= 52 characters to leave room for suffixes)."""
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    name = re.sub(r"-{2,}", "-", name)[:52].strip("-")
    if not name:
        raise UsageError(f"{text!r} gives no usable name; pass --name")
    return name
