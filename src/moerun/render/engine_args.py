"""Engine command lines for one deployment, per engine and release, checked against its flags.

`engine_group(ctx)` turns a Deployment into an EngineGroup: the head and worker commands of one
instance. Every command is checked against the flags the target release accepts (extracted
from its published wheel): a flag it lacks or marks deprecated is an error, never emitted.
"""

from __future__ import annotations

from moerun.core.deploy.engine_flags import FlagSet
from moerun.core.deploy.launch import EngineGroup, NodeRole
from moerun.errors import LayoutError
from moerun.render import sglang_args, vllm_args
from moerun.render.group_context import GroupContext


def engine_group(ctx: GroupContext) -> EngineGroup:
    """The checked commands of one engine instance (LayoutError when the engine cannot)."""
    builder = vllm_args.build if ctx.engine == "vllm" else sglang_args.build
    group = builder(ctx)
    check_commands(group.head, ctx.flags, ctx.facts.launcher, group.name)
    if group.worker is not None:
        check_commands(group.worker, ctx.flags, ctx.facts.launcher, group.name)
    return group


def check_commands(role: NodeRole, flags: FlagSet, launcher: tuple[str, ...], where: str) -> None:
    """Raise LayoutError naming every flag of `role` that `flags` does not accept."""
    for step in role.steps:
        if step.package != flags.package:
            continue
        argv = step.argv[len(launcher) :] if step.argv[: len(launcher)] == launcher else step.argv
        problems = flags.problems(argv)
        if problems:
            raise LayoutError(
                f"{where}: the command would not start on {flags.label}: "
                + "; ".join(problems)
                + " (choose another --engine-version)"
            )
