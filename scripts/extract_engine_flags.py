#!/usr/bin/env python3
"""Extract the command-line flags of real vLLM / SGLang releases into moerun's catalog.

    python scripts/extract_engine_flags.py                      # the default set below
    python scripts/extract_engine_flags.py vllm==0.34.0         # a new release
    python scripts/extract_engine_flags.py sglang==0.5.24 --out /tmp/flags

For each `package==version` it downloads the published wheel from PyPI (`pip download
--no-deps`, no GPU and no install of the engine), unpacks its Python sources, and builds the
engine's own argparse parser in a child interpreter (`engine_flags_child.py`) in which GPU
libraries are stubbed. Every option string is recorded with its aliases, whether it takes a
value, whether the engine marks it deprecated (argparse `deprecated=`, a Deprecated* action,
or a help text that says so) and the replacement the engine names. The result is written to
src/moerun/catalog/data/engine_flags/<package>-<version>.json, which moerun reads at run time
to refuse emitting a flag the chosen release does not accept.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "src" / "moerun" / "catalog" / "data" / "engine_flags"
CHILD = Path(__file__).resolve().parent / "engine_flags_child.py"

DEFAULT_SPECS = (
    "vllm==0.33.0",
    "vllm==0.32.0",
    "sglang==0.5.23",
    # The last release before --attn-dp-size (0.5.22 added it): DP attention is
    # --dp-size N --enable-dp-attention there, so moerun's version switch is exercised.
    "sglang==0.5.21",
    "sglang-router==0.3.2",
    "vllm-router==0.1.17",
)
# Pure-Python packages the parsers need for real (a stub would change their behaviour).
HELPER_DEPS = ("msgspec", "regex", "pydantic", "pyyaml", "packaging", "typing_extensions")
# Modules stubbed from the start (more are stubbed on demand when an import is missing).
# vllm.ir / v1.executor / v1.worker register kernels at import time; argument parsing needs none.
PRE_STUBS = {
    "vllm": "torch,triton,transformers,numpy,PIL,zmq,scipy,vllm.ir,vllm.v1.executor,vllm.v1.worker",
    "sglang": "torch,triton,transformers,numpy,PIL,zmq",
    "sglang_router": "sglang_router.sglang_router_rs,setproctitle",
    "vllm_router": "vllm_router.vllm_router_rs,setproctitle",
}
ENTRY_POINTS = {
    "vllm": "vllm serve (vllm.entrypoints.common.cli_args.make_arg_parser)",
    "sglang": "python -m sglang.launch_server / sglang serve (ServerArgs.add_cli_args)",
    "sglang_router": "python -m sglang_router.launch_router (RouterArgs.add_cli_args)",
    "vllm_router": "vllm-router (RouterArgs.add_cli_args)",
}
MAX_STUB_ROUNDS = 80


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("specs", nargs="*", default=list(DEFAULT_SPECS), help="package==version")
    p.add_argument("--out", type=Path, default=OUT_DIR, help=f"output folder ({OUT_DIR})")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="moerun-flags-") as tmp:
        deps = Path(tmp) / "deps"
        _pip("install", "--quiet", "--target", str(deps), *HELPER_DEPS)
        for spec in args.specs:
            data = extract(spec, Path(tmp), deps)
            path = args.out / f"{data['package']}-{data['version']}.json"
            path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", "utf-8")
            print(f"{spec}: {len(data['flags'])} flags -> {path}")
    return 0


def _pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", *args], check=True)


def extract(spec: str, tmp: Path, deps: Path) -> dict[str, Any]:
    """Download one wheel, build its parser in a child interpreter, return the fixture."""
    package, _, version = spec.partition("==")
    if not version:
        raise SystemExit(f"{spec}: give package==version")
    wheels = tmp / "wheels" / spec
    _pip("download", "--quiet", "--no-deps", "--only-binary=:all:", "-d", str(wheels), spec)
    (wheel,) = sorted(wheels.glob("*.whl"))
    src = tmp / "src" / spec
    with zipfile.ZipFile(wheel) as zf:
        for name in zf.namelist():
            if not name.endswith((".so", ".cubin", ".fatbin")):
                zf.extract(name, src)
    module = package.replace("-", "_")
    raw = _run_child(src, deps, module)
    return {
        "package": package,
        "version": version,
        "source": f"PyPI {spec}: {wheel.name}",
        "source_url": f"https://pypi.org/project/{package}/{version}/",
        "wheel_sha256": hashlib.sha256(wheel.read_bytes()).hexdigest(),
        "extracted_on": datetime.date.today().isoformat(),
        "command": f"python scripts/extract_engine_flags.py {spec}",
        "parser": ENTRY_POINTS[module],
        "flags": normalize(raw["actions"], raw["values"]),
        "env": raw["env"],
    }


def _run_child(src: Path, deps: Path, module: str) -> dict[str, Any]:
    stubs = PRE_STUBS.get(module, "")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(VLLM_TARGET_DEVICE="cpu", SGLANG_USE_CPU_ENGINE="1")
    for _ in range(MAX_STUB_ROUNDS):
        cmd = [sys.executable, "-S", str(CHILD), str(src), str(deps), module, stubs]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=src)
        if proc.returncode == 0:
            return dict(json.loads(proc.stdout))
        missing = re.search(r"^MISSING (\S+)$", proc.stderr, re.M)
        top = missing.group(1).split(".")[0] if missing else None
        if proc.returncode != 3 or top is None or top == module or top in stubs.split(","):
            raise SystemExit(f"{module}: parser could not be built:\n{proc.stderr[-4000:]}")
        stubs = f"{stubs},{top}"
    raise SystemExit(f"{module}: gave up after stubbing {stubs}")


_DEPRECATED_START = re.compile(r"^\W*deprecated\b", re.I)
_REPLACEMENT = re.compile(r"\b[Uu]se\s+['`\"]?(--[A-Za-z0-9][\w.-]*(?:[= ][^\s'`\",;)]+)?)")


def normalize(actions: list[dict[str, Any]], values: dict[str, list[str]]) -> dict[str, Any]:
    """One record per flag, keyed by its first long option; aliases list the others."""
    flags: dict[str, Any] = {}
    for a in actions:
        options = a["options"]
        if "--help" in options:
            continue
        name = next((o for o in options if o.startswith("--")), options[0])
        text = " ".join((a["help"] or "").split())
        deprecated = bool(a["deprecated"]) or "Deprecated" in a["action"]
        deprecated = deprecated or bool(_DEPRECATED_START.search(text))
        deprecated = deprecated or any(f"{o} is deprecated" in text for o in options)
        replacement = a["new_flag"]
        if deprecated and replacement is None:
            found = _REPLACEMENT.search(text)
            replacement = found.group(1) if found else None
        choices = values.get(name, a["choices"])
        flags[name] = {
            "aliases": [o for o in options if o != name],
            "takes_value": a["nargs"] != 0,
            "deprecated": deprecated,
            "replacement": replacement if deprecated else None,
            "choices": sorted(choices) if choices is not None and len(choices) <= 300 else None,
        }
    return dict(sorted(flags.items()))


if __name__ == "__main__":
    raise SystemExit(main())
