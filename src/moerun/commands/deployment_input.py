"""A deployment described as a dict (a plan file's `deployment`) -> Deployment.

The dict has exactly the deployment flags' names in snake_case (`model, gpu, num_gpus, weights,
kv_dtype, engine, tp, dp, ep, pp, mtp, max_context, mem_fraction, max_num_batched_tokens,
max_num_seqs, mixed_chunk, max_prefill_tokens`),
null where a flag is optional. It is validated like the flags and then built by the very same
code as `--model ... --gpu ...` (`moerun.commands.deployment_args.build_deployment`), so a plan
and a command line that say the same thing give the same Deployment.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from moerun.commands.arg_types import MAX_MTP_TOKENS
from moerun.commands.deployment_args import build_deployment
from moerun.core.deploy.default_layout import resolve_layout
from moerun.core.deploy.deployment import Deployment
from moerun.core.deploy.engine import ENGINES
from moerun.core.model.kv_cache import KV_DTYPES
from moerun.core.model.weights import WEIGHT_FORMATS
from moerun.errors import UsageError

DEPLOYMENT_KEYS = (
    "model",
    "gpu",
    "num_gpus",
    "weights",
    "kv_dtype",
    "engine",
    "tp",
    "dp",
    "ep",
    "pp",
    "mtp",
    "max_context",
    "mem_fraction",
    "max_num_batched_tokens",
    "max_num_seqs",
    "mixed_chunk",
    "max_prefill_tokens",
)
_DEFAULTS: dict[str, Any] = {
    "weights": "fp8",
    "kv_dtype": "fp8",
    "engine": "vllm",
    "mtp": 0,
    "mixed_chunk": False,
}
_CHOICES: dict[str, tuple[str, ...]] = {
    "weights": WEIGHT_FORMATS,
    "kv_dtype": KV_DTYPES,
    "engine": ENGINES,
}
_POSITIVE = (
    "num_gpus",
    "tp",
    "dp",
    "ep",
    "pp",
    "max_context",
    "max_num_batched_tokens",
    "max_num_seqs",
    "max_prefill_tokens",
)


def deployment_from_dict(d: object, where: str = "deployment") -> tuple[Deployment, bool]:
    """The Deployment `d` describes, and whether it names a layout (tp/dp/ep/pp)."""
    return build_deployment(**fields_from_dict(d, where))


LAYOUT_KEYS = ("tp", "dp", "ep", "pp")


def with_layout(d: Mapping[str, Any], where: str = "deployment") -> dict[str, Any]:
    """`d` with its layout settled: as given when it names one (tp/dp/ep/pp), else the default
    layout rule's (`moerun.core.deploy.default_layout`), as `simulate` and `emulate` settle
    it, so a measurement is priced on the layout that served it."""
    out = dict(d)
    if any(out.get(k) is not None for k in LAYOUT_KEYS):
        return out
    known = {k: v for k, v in out.items() if k in DEPLOYMENT_KEYS}
    dep = resolve_layout(*deployment_from_dict(known, where)).deployment
    par = dep.parallel
    out.update(tp=par.tp, dp=par.dp, ep=par.ep, pp=par.pp)
    return out


def fields_from_dict(d: object, where: str = "deployment") -> dict[str, Any]:
    """`d` checked as the flags are checked, as the fields the flags would give."""
    if not isinstance(d, Mapping):
        raise UsageError(f"{where}: expected an object with the deployment flags")
    unknown = sorted(set(d) - set(DEPLOYMENT_KEYS))
    if unknown:
        raise UsageError(
            f"{where}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(DEPLOYMENT_KEYS)}"
        )
    missing = [k for k in ("gpu", "num_gpus") if d.get(k) is None]
    if missing:
        raise UsageError(f"{where}: {' and '.join(missing)} required (the GPU id and count)")
    values: dict[str, Any] = {}
    for key in DEPLOYMENT_KEYS:
        value = d.get(key)
        values[key] = _DEFAULTS.get(key) if value is None else _check(key, value, where)
    if (values["mixed_chunk"] or values["max_prefill_tokens"] is not None) and (
        values["engine"] != "sglang"
    ):
        raise UsageError(
            f"{where}: mixed_chunk and max_prefill_tokens are SGLang flags: set engine to sglang"
        )
    return values


def _check(key: str, value: Any, where: str) -> Any:
    if key in _CHOICES:
        if value not in _CHOICES[key]:
            raise UsageError(f"{where}.{key}: {value!r} is not one of {', '.join(_CHOICES[key])}")
        return value
    if key in ("model", "gpu"):
        if not isinstance(value, str) or not value:
            raise UsageError(f"{where}.{key}: expected a non-empty string, got {value!r}")
        return value
    if key == "mixed_chunk":
        if not isinstance(value, bool):
            raise UsageError(f"{where}.mixed_chunk: expected true or false, got {value!r}")
        return value
    if key == "mem_fraction":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UsageError(f"{where}.mem_fraction: expected a number, got {value!r}")
        if not 0.0 < float(value) <= 1.0:
            raise UsageError(f"{where}.mem_fraction: must be in (0, 1], got {value}")
        return float(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageError(f"{where}.{key}: expected a whole number, got {value!r}")
    if key in _POSITIVE and value <= 0:
        raise UsageError(f"{where}.{key}: must be at least 1, got {value}")
    if key == "mtp" and value < 0:
        raise UsageError(f"{where}.mtp: must not be negative, got {value}")
    if key == "mtp" and value > MAX_MTP_TOKENS:
        raise UsageError(f"{where}.mtp: at most {MAX_MTP_TOKENS} draft tokens, got {value}")
    return value
