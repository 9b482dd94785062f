"""Gateway backend entries for a deployment, in the format of `moerun gateway --config`.

A self-hosted deployment is one backend at its entry point (the engine's head, or the PD
router); a managed API from a plan's managed or hybrid option is another, whose facts the
gateway fills in from its provider id. `models` maps the public model name to them.
"""

from __future__ import annotations

from typing import Any

from moerun.core.deploy.launch import DeployPlan
from moerun.render.yaml_text import comment, dump

HEADER = """Gateway backends for {name}, written by `moerun deploy`
(the format of `moerun gateway --config`). Add a `keys:` section for API keys and policies;
without one the gateway accepts every request."""
UNKNOWN_PLACE = """jurisdiction / region of the self-hosted backend are unknown at deploy time:
null here. A null jurisdiction satisfies no policy that requires one; set them (or pass
--jurisdiction / --region to moerun deploy) once you know where the GPUs are."""


def backend_entries(plan: DeployPlan, self_hosted_url: str | None) -> list[dict[str, Any]]:
    """One entry per backend: the self-hosted entry point first, then managed APIs."""
    entries: list[dict[str, Any]] = []
    if plan.groups and self_hosted_url is not None:
        entries.append(
            {
                "name": plan.name,
                "kind": "self-hosted",
                "base_url": self_hosted_url,
                "model": plan.served_model_name,
                "jurisdiction": plan.jurisdiction,
                "region": plan.region,
                "certifications": [],
                # Self-hosted engines keep no request data beyond the KV cache.
                "zero_retention": True,
                "input_usd_per_mtok": 0.0,
                "cached_input_usd_per_mtok": 0.0,
                "output_usd_per_mtok": 0.0,
            }
        )
    for m in plan.managed:
        entries.append(
            {
                "name": m.name,
                "kind": "managed",
                "provider": m.provider,
                "base_url": m.base_url,
                "model": m.model,
                "api_key_env": m.api_key_env,
            }
        )
    return entries


def gateway_config(plan: DeployPlan, self_hosted_url: str | None) -> dict[str, Any]:
    """`backends` and `models` of the gateway config."""
    entries = backend_entries(plan, self_hosted_url)
    return {
        "backends": entries,
        "models": {plan.public_model: [e["name"] for e in entries]},
    }


def backends_yaml(plan: DeployPlan, self_hosted_url: str | None, url_note: str = "") -> str:
    """The text of gateway-backends.yaml."""
    notes = [HEADER.format(name=plan.name)]
    if plan.groups and plan.jurisdiction is None:
        notes.append(UNKNOWN_PLACE)
    if url_note:
        notes.append(url_note)
    return comment("\n".join(notes)) + dump(gateway_config(plan, self_hosted_url))
