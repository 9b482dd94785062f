"""What is known to serve: a support matrix over model type, engine, GPU, weight format and
feature, and the platform flags a GPU vendor's recipes add (data in catalog/support.yaml).

`support_for(matrix, dep, disaggregated)` judges one deployment aspect by aspect: the base
(model type, engine, GPU, weights) and each feature it uses. For each aspect the first rule
whose fields all match decides; no rule: unverified. The deployment's status is its worst
aspect's, with every matching rule's sources and every non-verified rule's reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from moerun.core.deploy.deployment import Deployment

STATUSES = ("verified", "unverified", "unsupported")  # best to worst
FEATURES = ("mtp", "dsa", "dp_attention", "pd_disaggregation")


@dataclass(frozen=True, slots=True)
class SupportRule:
    """One sourced verdict; an empty tuple matches anything, `feature` None is the base."""

    status: str
    sources: tuple[str, ...]
    model_types: tuple[str, ...] = ()
    engines: tuple[str, ...] = ()
    gpus: tuple[str, ...] = ()
    weights: tuple[str, ...] = ()
    feature: str | None = None
    reason: str = ""

    def matches(self, model_type: str, engine: str, gpu: str, weights: str) -> bool:
        """Whether every field this rule names holds for the combination."""
        return all(
            not allowed or value in allowed
            for allowed, value in (
                (self.model_types, model_type),
                (self.engines, engine),
                (self.gpus, gpu),
                (self.weights, weights),
            )
        )


@dataclass(frozen=True, slots=True)
class Platform:
    """Flags, environment and image a GPU vendor's recipes add to an engine's command."""

    engines: tuple[str, ...]
    gpus: tuple[str, ...]
    model_types: tuple[str, ...]
    args: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    image: str | None
    image_note: str
    note: str
    sources: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Source:
    """Where a verdict comes from."""

    id: str
    title: str
    ref: str
    date: str


@dataclass(frozen=True, slots=True)
class Support:
    """A deployment's support status, why, and the sources of every verdict that applied."""

    status: str
    reasons: tuple[str, ...]
    sources: tuple[Source, ...]

    def as_dict(self) -> dict[str, object]:
        """JSON form: status, reasons, sources with title, url and date."""
        return {
            "status": self.status,
            "reasons": list(self.reasons),
            "sources": [
                {"id": s.id, "title": s.title, "url": s.ref, "date": s.date} for s in self.sources
            ],
        }

    @property
    def verified(self) -> bool:
        """Whether every aspect is verified by a source."""
        return self.status == "verified"


@dataclass(frozen=True, slots=True)
class SupportMatrix:
    """Every rule and platform, with the sources they cite."""

    rules: tuple[SupportRule, ...] = ()
    platforms: tuple[Platform, ...] = ()
    sources: tuple[Source, ...] = ()

    def platform_for(self, dep: Deployment) -> Platform | None:
        """The first platform entry for the deployment's engine, GPU and model type."""
        for p in self.platforms:
            if (
                dep.engine.name in p.engines
                and dep.gpu.id in p.gpus
                and (not p.model_types or dep.model.arch.model_type in p.model_types)
            ):
                return p
        return None


def features_of(dep: Deployment, disaggregated: bool) -> tuple[str, ...]:
    """The features a deployment uses, in FEATURES order."""
    used = {
        "mtp": dep.mtp.enabled,
        "dsa": dep.model.arch.indexer is not None,
        "dp_attention": dep.parallel.dp > 1,
        "pd_disaggregation": disaggregated,
    }
    return tuple(f for f in FEATURES if used[f])


def support_for(matrix: SupportMatrix, dep: Deployment, disaggregated: bool = False) -> Support:
    """The deployment's status: its worst aspect's, with sources and reasons."""
    model_type = dep.model.arch.model_type
    key = (model_type, dep.engine.name, dep.gpu.id, dep.weights)
    worst = "verified"
    reasons: list[str] = []
    cited: list[str] = []
    for feature in (None, *features_of(dep, disaggregated)):
        rule = next((r for r in matrix.rules if r.feature == feature and r.matches(*key)), None)
        what = "the base combination" if feature is None else feature.replace("_", " ")
        if rule is None:
            status = "unverified"
            reasons.append(
                f"{what}: no recipe, cookbook or release note found for {model_type} "
                f"on {dep.engine.name} with {dep.gpu.id} {dep.weights}"
            )
        else:
            status = rule.status
            cited += [s for s in rule.sources if s not in cited]
            if status != "verified":
                reasons.append(rule.reason or f"{what}: {status}")
        if STATUSES.index(status) > STATUSES.index(worst):
            worst = status
    by_id = {s.id: s for s in matrix.sources}
    return Support(worst, tuple(reasons), tuple(by_id[c] for c in cited if c in by_id))
