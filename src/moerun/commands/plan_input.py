"""Read a `moerun plan --json` file and pick one ranked option to deploy.

The file is `{"options": [...]}`; each option has `rank`, `kind` (self-hosted, managed or
hybrid), `replicas`, `deployment` (a dict of the deployment flags, or null), `disaggregation`
(null or `{"prefill": {"deployment": D, "instances": n}, "decode": {...}}`) and `managed`
(null or `{"provider", "model", "base_url"}`). A hybrid has both a deployment and `managed`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from moerun.commands.deployment_input import deployment_from_dict
from moerun.commands.request import DeployRequest, Part
from moerun.core.deploy.launch import ManagedBackend
from moerun.errors import UsageError

KINDS = ("self-hosted", "managed", "hybrid")


def read_plan(path: Path, option: int) -> DeployRequest:
    """The deploy request of option `option` (its rank) in the plan file at `path`."""
    try:
        data = json.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read plan file {path}: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(
            f"{path} is not a JSON plan ({exc}); write one with `moerun plan --json > plan.json`"
        ) from exc
    options = data.get("options") if isinstance(data, dict) else None
    if not isinstance(options, list) or not options:
        raise UsageError(f"{path}: no `options` list; write it with `moerun plan --json`")
    ranks = [o.get("rank") for o in options if isinstance(o, dict)]
    chosen = [o for o in options if isinstance(o, dict) and o.get("rank") == option]
    if not chosen:
        listed = ", ".join(str(r) for r in ranks)
        raise UsageError(f"{path}: no option of rank {option} (ranks: {listed}); pick --option N")
    return request_from_option(chosen[0], f"{path.name} option {option}")


def request_from_option(o: dict[str, Any], where: str) -> DeployRequest:
    """One plan option -> the parts to deploy and the managed backends to register."""
    kind = o.get("kind")
    if kind not in KINDS:
        raise UsageError(f"{where}: kind {kind!r} is not one of {', '.join(KINDS)}")
    replicas = o.get("replicas", 1)
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1:
        raise UsageError(f"{where}: replicas must be a whole number >= 1, got {replicas!r}")
    parts = _parts(o, where, replicas)
    managed = _managed(o.get("managed"), where)
    if kind in ("self-hosted", "hybrid") and not parts:
        raise UsageError(f"{where}: a {kind} option needs a deployment or a disaggregation")
    if kind in ("managed", "hybrid") and managed is None:
        raise UsageError(f"{where}: a {kind} option needs `managed` (provider, model, base_url)")
    if kind == "managed" and parts:
        raise UsageError(f"{where}: a managed option has no self-hosted deployment")
    return DeployRequest(parts=tuple(parts), managed=() if managed is None else (managed,))


def _parts(o: dict[str, Any], where: str, replicas: int) -> list[Part]:
    dep_d, disagg = o.get("deployment"), o.get("disaggregation")
    if disagg is not None:
        if not isinstance(disagg, dict):
            raise UsageError(f"{where}.disaggregation: expected an object with prefill and decode")
        parts = []
        for role in ("prefill", "decode"):
            side = disagg.get(role)
            if not isinstance(side, dict):
                raise UsageError(f"{where}.disaggregation.{role}: missing")
            instances = side.get("instances", 1)
            if isinstance(instances, bool) or not isinstance(instances, int) or instances < 1:
                raise UsageError(f"{where}.disaggregation.{role}.instances: must be >= 1")
            dep, explicit = deployment_from_dict(
                side.get("deployment"), f"{where}.disaggregation.{role}.deployment"
            )
            parts.append(Part(role, dep, explicit, instances))
        return parts
    if dep_d is None:
        return []
    dep, explicit = deployment_from_dict(dep_d, f"{where}.deployment")
    return [Part("serve", dep, explicit, replicas)]


def _managed(m: Any, where: str) -> ManagedBackend | None:
    if m is None:
        return None
    if not isinstance(m, dict):
        raise UsageError(f"{where}.managed: expected an object")
    fields = {}
    for key in ("provider", "model", "base_url"):
        value = m.get(key)
        if not isinstance(value, str) or not value:
            raise UsageError(f"{where}.managed.{key}: expected a non-empty string")
        fields[key] = value
    env = re.sub(r"[^A-Z0-9]+", "_", fields["provider"].upper()).strip("_") + "_API_KEY"
    return ManagedBackend(
        name=fields["provider"],
        provider=fields["provider"],
        model=fields["model"],
        base_url=fields["base_url"],
        api_key_env=env,
    )
