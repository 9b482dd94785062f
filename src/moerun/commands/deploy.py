"""`moerun deploy`: launch commands, Compose file or Kubernetes manifests for a deployment.

Input is either the deployment flags (`--model --gpu --num-gpus --engine [--tp --ep ...]`) or a
`moerun plan --json` file with `--option N`. Output is a folder of files (written atomically)
plus a summary of what runs on each node, or the same as JSON with --json.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from moerun import __version__
from moerun.commands.arg_types import positive_int as _count
from moerun.commands.deployment_args import add_deployment_args, deployment_from_args
from moerun.commands.request import DeployOptions, DeployRequest, Part
from moerun.errors import UsageError

EXIT_OK = 0
# Deployment flags: giving one next to a plan file is a contradiction. Those with a default
# are registered without one here, so that "not given" can be told apart.
_PLAN_CONFLICTS = (
    "model", "gpu", "num_gpus", "weights", "kv_dtype", "engine", "tp", "dp", "ep", "pp",
    "max_context", "mem_fraction", "max_num_batched_tokens", "max_num_seqs", "mixed_chunk",
    "max_prefill_tokens",
)  # fmt: skip
_FLAG_DEFAULTS = {"weights": "fp8", "kv_dtype": "fp8", "engine": "vllm"}


def _dns_label(text: str) -> str:
    if not re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a Kubernetes name (a-z, 0-9, '-')")
    return text


def register(sub: Any) -> None:
    """Add `moerun deploy` to the CLI's subparsers."""
    from moerun.render.targets import TARGETS

    p = sub.add_parser(
        "deploy",
        help="launch commands, Compose file or Kubernetes manifests for a deployment",
        description=__doc__,
    )
    p.add_argument("plan", nargs="?", type=Path, metavar="PLAN.json", help="moerun plan --json")
    p.add_argument("--option", type=_count, default=1, help="rank of the plan option (default 1)")
    add_deployment_args(p, model_positional=False)
    p.set_defaults(**dict.fromkeys(_FLAG_DEFAULTS))
    out = p.add_argument_group("output")
    out.add_argument("--target", choices=TARGETS, required=True)
    out.add_argument("--out", type=Path, required=True, help="folder to write (atomically)")
    out.add_argument("--force", action="store_true", help="replace a non-empty --out")
    out.add_argument("--json", action="store_true", help="files and commands as JSON")
    d = p.add_argument_group("deploy")
    d.add_argument("--engine-version", help="engine release to target (default: the newest known)")
    d.add_argument("--replicas", type=_count, default=1, help="instances of the deployment")
    d.add_argument("--name", type=_dns_label, help="name of the objects (default: model-gpu)")
    d.add_argument("--namespace", type=_dns_label, default="default", help="Kubernetes namespace")
    d.add_argument("--hf-repo", help="Hugging Face repo or local path of the checkpoint")
    d.add_argument("--served-model-name", help="model name clients send (default: the repo)")
    d.add_argument("--image", help="engine image (default: the release's official image)")
    d.add_argument("--jurisdiction", help="ISO 3166 country code (or EU) where the GPUs are")
    d.add_argument("--region", help="region of the GPUs, for the gateway's backend entry")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the deployment, write its files, print what runs where."""
    from moerun.catalog.deploy import load_deploy_facts
    from moerun.commands.deploy_plan import build_plan
    from moerun.commands.outdir import check_out_dir, write_tree
    from moerun.render.targets import render

    check_out_dir(args.out, args.force)
    request = _request(args)
    plan = build_plan(request, _options(args))
    rendered = render(plan, args.target, load_deploy_facts(), args.namespace, __version__)
    written = write_tree(args.out, rendered.files, rendered.executable, args.force)
    data = {
        "name": plan.name,
        "target": args.target,
        "out": str(args.out),
        "files": written,
        "groups": [
            {
                "name": g.name,
                "role": g.role,
                "engine": g.engine,
                "engine_version": g.engine_version,
                "layout": g.deployment.parallel.describe(),
                "num_nodes": g.num_nodes,
                "gpus_per_node": g.gpus_per_node,
                "replicas": g.replicas,
                "image": g.image,
                "checkpoint": g.checkpoint,
            }
            for g in plan.groups
        ],
        "managed": [m.name for m in plan.managed],
        "commands": [
            {"group": c.group, "role": c.role, "node": c.node, "command": c.command}
            for c in rendered.commands
        ],
        "notes": [*plan.notes, *rendered.notes],
    }
    if args.json:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        sys.stdout.write(summary(data))
    return EXIT_OK


def _request(args: argparse.Namespace) -> DeployRequest:
    from moerun.commands.plan_input import read_plan

    if args.plan is not None:
        given = [k for k in _PLAN_CONFLICTS if getattr(args, k, None) is not None]
        given += ["mtp"] if args.mtp else []
        given += ["replicas"] if args.replicas != 1 else []
        if given:
            flags = ", ".join("--" + k.replace("_", "-") for k in given)
            raise UsageError(f"give either a plan file or deployment flags, not both ({flags})")
        return read_plan(args.plan, args.option)
    if args.option != 1:
        raise UsageError("--option picks an option of a plan file; give PLAN.json")
    for key, default in _FLAG_DEFAULTS.items():
        if getattr(args, key) is None:
            setattr(args, key, default)
    dep, explicit = deployment_from_args(args)
    return DeployRequest(parts=(Part("serve", dep, explicit, args.replicas),), managed=())


def _options(args: argparse.Namespace) -> DeployOptions:
    from moerun.core.market.policy import check_jurisdiction

    jurisdiction = None if args.jurisdiction is None else check_jurisdiction(args.jurisdiction)
    return DeployOptions(
        target=args.target,
        name=args.name,
        namespace=args.namespace,
        engine_version=args.engine_version,
        hf_repo=args.hf_repo,
        served_model_name=args.served_model_name,
        image=args.image,
        jurisdiction=jurisdiction,
        region=args.region,
    )


def summary(data: dict[str, Any]) -> str:
    """The human summary: what was written, and the command of every node."""
    lines = [f"moerun deploy: {data['name']} -> {data['out']} ({data['target']})"]
    for g in data["groups"]:
        lines.append(
            f"  {g['name']}: {g['role']}, {g['engine']} {g['engine_version']}, {g['layout']}, "
            f"{g['replicas']} x {g['num_nodes']} node(s) x {g['gpus_per_node']} GPUs, "
            f"{g['checkpoint']}"
        )
    for m in data["managed"]:
        lines.append(f"  {m}: managed API (gateway backend only)")
    lines.append(f"wrote {len(data['files'])} files:")
    lines += [f"  {f}" for f in data["files"]]
    if data["commands"]:
        lines.append("commands:")
        for c in data["commands"]:
            lines.append(f"  [{c['group']} node {c['node']}] {c['command']}")
    if data["notes"]:
        lines.append("notes:")
        lines += [f"  - {n}" for n in data["notes"]]
    return "\n".join(lines) + "\n"
