"""The one default-layout rule: what `fit`, `simulate`, `emulate`, `deploy` and `plan` run when
no layout (--tp/--dp/--ep/--pp) is given.

Rule: among the layouts over the same GPUs that fit (`candidate_layouts`: TP/DP/EP inside a
node, PP only across nodes), the one with the most KV capacity; ties go to fewer pipeline
stages, then to expert parallelism. More KV is more concurrent sequences at the same cost;
for MLA models (GLM-5, DeepSeek) that is DP-attention, whose ranks each hold their own cache.
When nothing fits, tensor parallelism over the whole replica (`TP = num_gpus / (dp x pp)`), so
that the memory fit can say why not.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from moerun.core.deploy.deployment import Deployment
from moerun.core.deploy.memory_fit import best_layout

DEFAULT_LAYOUT_RULE = "most KV capacity among the layouts that fit"


@dataclass(frozen=True, slots=True)
class ResolvedLayout:
    """The deployment with its layout settled, and where the layout came from."""

    deployment: Deployment
    source: str  # "given" (flags or plan file), "default" (the rule) or "fallback" (none fits)

    def describe(self) -> str:
        """Text such as 'DP8 x EP8 (default: most KV capacity among the layouts that fit)'."""
        layout = self.deployment.parallel.describe()
        if self.source == "given":
            return f"{layout} (given)"
        if self.source == "default":
            return f"{layout} (default: {DEFAULT_LAYOUT_RULE})"
        return f"{layout} (no layout fits; tensor parallel shown)"


def resolve_layout(dep: Deployment, explicit: bool) -> ResolvedLayout:
    """`dep` as given when `explicit`, else with the default layout over its GPUs."""
    if explicit:
        return ResolvedLayout(dep, "given")
    found = best_layout(dep)
    if found is None:
        return ResolvedLayout(dep, "fallback")
    return ResolvedLayout(replace(dep, parallel=found[0]), "default")
