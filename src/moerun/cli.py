"""The `moerun` command line: parse arguments, call the layers, print. Nothing else."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console

from moerun import __version__
from moerun.catalog.gpus import load_gpus
from moerun.catalog.models import load_spec
from moerun.commands.deployment_args import add_deployment_args, deployment_from_args
from moerun.commands.model_list import add_list as _add_model_list
from moerun.core.deploy.default_layout import resolve_layout
from moerun.core.deploy.memory_fit import best_layout, memory_fit
from moerun.errors import MoerunError, UsageError
from moerun.render import reports

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad usage with one line and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see `{self.prog} --help`)")


def _emit(args: argparse.Namespace, data: Any, human: Any) -> None:
    if getattr(args, "json", False):
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        human(Console(), data)


def cmd_model_show(args: argparse.Namespace) -> int:
    spec = load_spec(args.model)
    _emit(args, reports.model_dict(spec), reports.print_model)
    return EXIT_OK


def cmd_fit(args: argparse.Namespace) -> int:
    given, explicit = deployment_from_args(args)
    resolved = resolve_layout(given, explicit)
    dep = resolved.deployment
    fit = memory_fit(dep)
    best = None if explicit else best_layout(dep)
    data = reports.fit_dict(dep, fit, best)
    data["layout_source"] = resolved.source
    data["layout_used"] = resolved.describe()
    if not explicit and best is None:
        data["best_layout"] = None
    _emit(args, data, reports.print_fit)
    return EXIT_OK


def cmd_gpus(args: argparse.Namespace) -> int:
    gpus = load_gpus()
    data: list[dict[str, Any]] = [
        {
            "id": g.id,
            "name": g.name,
            "memory_bytes": g.memory_bytes,
            "memory_gib": round(g.memory_gib, 2),
            "mem_bw_tb_per_s": g.mem_bw_bytes_per_s / 1e12,
            "dense_tflops": g.dense_tflops,
            "gpus_per_node": g.gpus_per_node,
        }
        for g in gpus.values()
    ]
    if args.json:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        from rich.table import Table

        t = Table(title="GPUs in the catalog")
        for col in ("id", "name", "memory GiB", "HBM TB/s", "dense TFLOPS", "per node"):
            t.add_column(col)
        for d in data:
            tflops = ", ".join(f"{k} {v:g}" for k, v in d["dense_tflops"].items())
            t.add_row(
                d["id"],
                d["name"],
                f"{d['memory_gib']:.1f}",
                f"{d['mem_bw_tb_per_s']:.2f}",
                tflops,
                str(d["gpus_per_node"]),
            )
        Console().print(t)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree."""
    p = _Parser(prog="moerun", description="Where and how to run GLM-5 and other MoE models.")
    p.add_argument("--version", action="version", version=f"moerun {__version__}")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

    model = sub.add_parser("model", help="model specs")
    model_sub = model.add_subparsers(dest="model_command", parser_class=_Parser)
    show = model_sub.add_parser("show", help="parameters, KV bytes, weight bytes, FLOPs")
    show.add_argument("model", help="catalog id (glm-5.1, deepseek-v3, ...) or config.json path")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_model_show)
    _add_model_list(model_sub)

    fit = sub.add_parser("fit", help="does a deployment fit in GPU memory, and with what KV")
    add_deployment_args(fit, model_positional=True)
    fit.add_argument("--json", action="store_true")
    fit.set_defaults(func=cmd_fit)

    gpus = sub.add_parser("gpus", help="GPUs in the catalog")
    gpus.add_argument("--json", action="store_true")
    gpus.set_defaults(func=cmd_gpus)

    for register in _command_modules():
        register(sub)
    return p


def _command_modules() -> list[Any]:
    """Commands that live in their own module (`moerun.commands.*`): each has `register(sub)`."""
    registers: list[Any] = []
    from moerun.commands import calibrate, simulate

    registers += [simulate.register, calibrate.register]
    from moerun.commands import gateway

    registers.append(gateway.register)
    from moerun.commands import bench, emulate

    registers += [bench.register, emulate.register]
    from moerun.commands import deploy

    registers.append(deploy.register)
    from moerun.commands import plan
    from moerun.formats import command as schema

    registers += [plan.register, schema.register]
    from moerun.commands import catalog_check

    registers.append(catalog_check.register)
    return registers


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: exit 0 for an answer, 2 for unusable input, 1 for an internal failure,
    130 on Ctrl-C (no traceback)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return EXIT_USAGE
        code: int = args.func(args)
        return code
    except MoerunError as exc:
        sys.stderr.write(f"moerun: error: {exc}\n")
        return EXIT_USAGE
    except BrokenPipeError:
        return EXIT_OK
    except KeyboardInterrupt:
        sys.stderr.write("moerun: interrupted\n")
        return EXIT_INTERRUPTED
    except Exception as exc:
        sys.stderr.write(
            f"moerun: internal error: {type(exc).__name__}: {exc} "
            "(please report it with the command you ran)\n"
        )
        return EXIT_INTERNAL


if __name__ == "__main__":
    raise SystemExit(main())
