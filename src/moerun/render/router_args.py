"""Prefill/decode router commands (sglang-router, vllm-router), checked against their flags.

Two forms: fixed worker URLs (shell and Compose, where addresses are known or filled in), and
Kubernetes service discovery by pod labels (the routers watch the pods, so every prefill and
decode replica is found, each with its own address and, for SGLang, its bootstrap port read
from the `sglang.ai/bootstrap-port` pod annotation).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from moerun.core.deploy.deploy_facts import RouterFacts
from moerun.core.deploy.engine_flags import FlagSet
from moerun.core.deploy.launch import RouterGroup
from moerun.errors import LayoutError
from moerun.render.group_context import LISTEN_HOST


def router_group(
    name: str, facts: RouterFacts, flags: FlagSet, engine_version: str, bootstrap_port: int | None
) -> RouterGroup:
    """The router of a disaggregated deployment (its commands are built per target)."""
    return RouterGroup(
        name=name,
        engine=facts.engine,
        package=facts.package,
        version=flags.version,
        image=facts.image(flags.version, engine_version),
        launcher=facts.launcher,
        pd_flag=facts.pd_flag,
        policy=facts.policy,
        port=facts.port,
        bootstrap_port=bootstrap_port,
        flags=flags,
    )


def _tail(router: RouterGroup) -> list[str]:
    return ["--policy", router.policy, "--host", LISTEN_HOST, "--port", str(router.port)]


def urls_argv(
    router: RouterGroup, prefill_urls: Sequence[str], decode_urls: Sequence[str]
) -> tuple[str, ...]:
    """Router command with fixed prefill and decode server URLs."""
    argv = [*router.launcher, router.pd_flag]
    for url in prefill_urls:
        argv += ["--prefill", url]
        if router.bootstrap_port is not None:
            argv.append(str(router.bootstrap_port))
    for url in decode_urls:
        argv += ["--decode", url]
    return checked((*argv, *_tail(router)), router)


def discovery_argv(
    router: RouterGroup,
    prefill_selector: Mapping[str, str],
    decode_selector: Mapping[str, str],
    namespace: str,
    worker_port: int,
) -> tuple[str, ...]:
    """Router command that finds prefill and decode pods by label in `namespace`."""
    argv = [*router.launcher, router.pd_flag, "--service-discovery"]
    argv += ["--prefill-selector", *(f"{k}={v}" for k, v in sorted(prefill_selector.items()))]
    argv += ["--decode-selector", *(f"{k}={v}" for k, v in sorted(decode_selector.items()))]
    argv += ["--service-discovery-namespace", namespace]
    argv += ["--service-discovery-port", str(worker_port)]
    return checked((*argv, *_tail(router)), router)


def checked(argv: tuple[str, ...], router: RouterGroup) -> tuple[str, ...]:
    """`argv` if the router release accepts it; LayoutError naming the problems otherwise."""
    problems = router.flags.problems(argv[len(router.launcher) :])
    if problems:
        raise LayoutError(f"{router.name}: the router would refuse: " + "; ".join(problems))
    return argv
