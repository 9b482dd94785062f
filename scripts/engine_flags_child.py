"""Child process of extract_engine_flags.py: build an engine's real argparse parser and dump it.

Run as `python -S engine_flags_child.py SRC DEPS PACKAGE STUBS`: SRC holds the unpacked wheel,
DEPS a few pure-Python packages the parser code needs for real (pydantic, msgspec, regex, ...),
STUBS a comma-separated list of modules (and module prefixes) replaced by inert stand-ins.
The engines' parsers are built from their own dataclasses and `add_argument` calls, so importing
that code is the only faithful way to read them; GPU libraries (torch, triton, ...) are stubbed
because nothing in argument parsing runs a kernel. Prints one JSON document on stdout; a missing
module is reported as a line `MISSING <name>` on stderr with exit status 3, so the parent can
stub it and retry.
"""

from __future__ import annotations

import abc
import argparse
import importlib.abc
import importlib.machinery
import json
import os
import sys
import types
from typing import Any

SRC, DEPS, PACKAGE, STUBS = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
STUB = {s for s in STUBS.split(",") if s}
# Attributes a stubbed torch must not pretend to have: SGLang and vLLM probe them to pick an
# accelerator, and a stub that "has" an NPU makes them raise.
NO_ATTR = {"npu", "xpu", "hpu", "musa", "mlu", "mps"}


def _no(name: str) -> Any:
    raise AttributeError(name)


def _any_schema(cls: Any, source: Any, handler: Any) -> Any:
    from pydantic_core import core_schema

    return core_schema.any_schema()


def _is_stub(obj: Any) -> bool:
    return isinstance(obj, _Meta) or isinstance(type(obj), _Meta)


def _ops() -> dict[str, Any]:
    """Dunder methods that make a stub usable wherever import-time code touches it."""
    return {
        "__bool__": lambda s: False,
        "__iter__": lambda s: iter(()),
        "__contains__": lambda s, x: False,
        "__len__": lambda s: 0,
        "__int__": lambda s: 0,
        "__index__": lambda s: 0,
        "__float__": lambda s: 0.0,
        "__setitem__": lambda s, k, v: None,
        "__getitem__": lambda s, k: s,
        "__add__": lambda s, o: s,
        "__radd__": lambda s, o: o,
        "__or__": lambda s, o: s,
        "__ror__": lambda s, o: s,
        "__mul__": lambda s, o: s,
        "__rmul__": lambda s, o: s,
        "__truediv__": lambda s, o: s,
        "__lt__": lambda s, o: False,
        "__gt__": lambda s, o: False,
        "__le__": lambda s, o: False,
        "__ge__": lambda s, o: False,
        "__enter__": lambda s: s,
        "__exit__": lambda s, *a: False,
        "__hash__": lambda s: id(s),
        "__eq__": lambda s, o: s is o or _is_stub(o),
        "__ne__": lambda s, o: not (s is o or _is_stub(o)),
        "__call__": lambda s, *a, **k: s,
        "__getattr__": lambda s, n: _no(n) if n.startswith("__") or n in NO_ATTR else _stub(n)(),
    }


class _Meta(abc.ABCMeta):
    """Metaclass of stub classes: subclassable (also next to ABC), callable, decorator-safe."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        if len(args) == 1 and callable(args[0]) and not kwargs:
            return args[0]  # used as a decorator
        return super().__call__(*args, **kwargs)

    def __getattr__(cls, name: str) -> Any:
        if name.startswith("__") or name in NO_ATTR:
            raise AttributeError(name)
        return _stub(name)


for _key, _value in _ops().items():
    if _key not in ("__getattr__", "__call__"):
        setattr(_Meta, _key, _value)


def _stub(name: str) -> Any:
    body = _ops()
    body["__init__"] = lambda s, *a, **k: None
    body["__init_subclass__"] = classmethod(lambda c, **k: None)
    body["__get_pydantic_core_schema__"] = classmethod(_any_schema)
    return _Meta(name.rsplit(".", 1)[-1], (), body)


class _Module(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in NO_ATTR:
            raise AttributeError(name)
        return _stub(f"{self.__name__}.{name}")


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if not any(fullname == s or fullname.startswith(s + ".") for s in STUB):
            return None
        return importlib.machinery.ModuleSpec(fullname, self, is_package=True)

    def create_module(self, spec: Any) -> Any:
        module = _Module(spec.name)
        module.__path__ = []
        module.__version__ = "2.9.0"
        return module

    def exec_module(self, module: Any) -> None:
        return None


def _bare_package(name: str) -> None:
    """Register a package without running its __init__ (which imports the whole engine)."""
    module = types.ModuleType(name)
    module.__path__ = [os.path.join(SRC, *name.split("."))]
    sys.modules[name] = module


def _build_parser() -> tuple[argparse.ArgumentParser, dict[str, list[str]], list[str]]:
    values: dict[str, list[str]] = {}
    env: list[str] = []
    if PACKAGE == "sglang":
        _bare_package("sglang")
        _bare_package("sglang.srt")
        from sglang.srt.server_args import ServerArgs

        parser = argparse.ArgumentParser(prog="sglang serve")
        ServerArgs.add_cli_args(parser)
    elif PACKAGE == "vllm":
        # vLLM only fills in help texts (where deprecations are written) when --help is asked.
        sys.argv = ["vllm", "serve", "--help"]
        import importlib

        from vllm.utils.argparse_utils import FlexibleArgumentParser

        # The serve parser moved between releases: common/ (0.33), launchers/ (0.32),
        # openai/ (older).
        for where in ("common", "launchers", "openai"):
            name = f"vllm.entrypoints.{where}.cli_args"
            try:
                make_arg_parser = importlib.import_module(name).make_arg_parser
                break
            except ModuleNotFoundError as exc:
                if exc.name != name:
                    raise
        else:
            raise SystemExit("vllm: no entrypoints/*/cli_args.py with make_arg_parser")

        parser = make_arg_parser(FlexibleArgumentParser(prog="vllm serve"))
        try:
            from vllm.reasoning import ReasoningParserManager
            from vllm.tool_parsers import ToolParserManager

            values["--tool-call-parser"] = sorted(ToolParserManager.list_registered())
            values["--reasoning-parser"] = sorted(ReasoningParserManager.list_registered())
            from vllm.config.cache import KV_CACHE_DTYPES

            # --kv-cache-dtype takes `CacheDType | str` (no argparse choices); the engine
            # validates against this list after parsing.
            values["--kv-cache-dtype"] = list(KV_CACHE_DTYPES)
        except Exception as exc:  # older layouts: the fixture then lacks these lists
            print(f"parser registries not read: {exc!r}", file=sys.stderr)
        import vllm.envs

        env = sorted(vllm.envs.environment_variables)
    elif PACKAGE in ("sglang_router", "vllm_router"):
        module = __import__(f"{PACKAGE}.router_args", fromlist=["RouterArgs"])
        parser = argparse.ArgumentParser(prog=PACKAGE)
        module.RouterArgs.add_cli_args(parser, use_router_prefix=False)
    else:
        raise SystemExit(f"unknown package {PACKAGE}")
    return parser, values, env


def main() -> None:
    sys.path[:0] = [SRC, DEPS]
    sys.meta_path.insert(0, _Finder())
    try:
        parser, values, env = _build_parser()
    except ModuleNotFoundError as exc:
        print(f"MISSING {exc.name}", file=sys.stderr)
        raise SystemExit(3) from exc
    deprecated_actions = getattr(parser, "_deprecated", set())
    actions = []
    for action in parser._actions:
        if not action.option_strings:
            continue
        choices = action.choices
        actions.append(
            {
                "options": list(action.option_strings),
                "action": type(action).__name__,
                "nargs": action.nargs if isinstance(action.nargs, (int, str)) else None,
                "help": None if action.help is None else str(action.help),
                "choices": None
                if choices is None or isinstance(choices, str)
                else [str(c) for c in choices],
                "deprecated": bool(getattr(action, "deprecated", False))
                or action in deprecated_actions,
                "new_flag": getattr(action, "new_flag", None),
            }
        )
    json.dump({"actions": actions, "values": values, "env": env}, sys.stdout)


if __name__ == "__main__":
    main()
