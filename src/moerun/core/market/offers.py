"""What a plan can buy: GPU cloud prices to self-host on, and managed APIs serving the model.

Both are endpoints under the one policy of `core.policy`. A self-hosted endpoint is a GPU
cloud region: its jurisdiction is the region's country when the catalog knows it; its
certifications are unknown unless a price override supplies them (a contract you hold); and
its retention is zero, because the team runs the engine and decides what it logs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from moerun.core.load.metrics import Slo
from moerun.core.market.cost import TokenPrices
from moerun.core.market.policy import EndpointFacts, Policy, policy_violations
from moerun.core.market.pricing import GpuPrice
from moerun.core.market.providers import Provider, ProviderModel


@dataclass(frozen=True, slots=True)
class CloudOffer:
    """One GPU cloud price with what the plan knows about the place it runs."""

    price: GpuPrice
    certifications: dict[str, str] = field(default_factory=dict)
    # billing increment of on-demand capacity; None: not in the catalog (no scale-down)
    billing_increment_s: int | None = None
    overridden: bool = False

    @property
    def facts(self) -> EndpointFacts:
        """The endpoint facts the policy is matched against."""
        return EndpointFacts(
            kind="self-hosted",
            jurisdictions=self.price.jurisdiction,
            certifications=dict(self.certifications),
            retention="zero",
        )

    @property
    def label(self) -> str:
        """Provider, region, instance and pricing (unique per price entry), for tables."""
        p = self.price
        where = " ".join(x for x in (p.provider, p.region, p.instance_type) if x)
        return f"{where} ({p.pricing})"

    @property
    def scales_down(self) -> bool:
        """Whether switching a replica off for an off-peak hour stops its bill."""
        pay_as_you_go = self.price.pricing in ("on_demand", "spot", "community", "marketplace")
        known = self.billing_increment_s is not None and self.billing_increment_s <= 3_600
        return pay_as_you_go and known

    def fits_node(self, num_gpus: int, gpus_per_node: int) -> bool:
        """Whether the priced unit can make whole nodes (a 1-GPU VM cannot host TP8)."""
        unit = self.price.num_gpus_per_instance
        return unit is None or unit >= min(num_gpus, gpus_per_node)


@dataclass(frozen=True, slots=True)
class ManagedOffer:
    """One provider's offering of the model, priced for the workload."""

    provider: Provider
    model: ProviderModel
    prices: TokenPrices
    usd_per_request: float

    @property
    def facts(self) -> EndpointFacts:
        """The endpoint facts the policy is matched against."""
        return EndpointFacts.from_provider(self.provider)

    @property
    def label(self) -> str:
        """Provider and model id, for tables."""
        return f"{self.provider.id} {self.model.model_id or self.model.listed_as}"

    @property
    def best_ttft_s(self) -> float | None:
        """The lowest published median TTFT (None when none is published)."""
        values = [p.ttft_s for p in self.model.perf if p.ttft_s is not None]
        return min(values) if values else None

    @property
    def best_output_tok_per_s(self) -> float | None:
        """The highest published median output speed per request."""
        values = [p.output_tokens_per_s for p in self.model.perf if p.output_tokens_per_s]
        return max(values) if values else None


def policy_stages(policy: Policy) -> list[tuple[str, Policy]]:
    """The policy split into one single-rule policy per constraint, in reporting order."""
    stages: list[tuple[str, Policy]] = []
    if policy.self_hosted_only:
        stages.append(("policy: self-hosted only", Policy(self_hosted_only=True)))
    if policy.allowed_jurisdictions:
        allowed = policy.allowed_jurisdictions
        stages.append(
            (f"policy: jurisdiction {'/'.join(allowed)}", Policy(allowed_jurisdictions=allowed))
        )
    for cert in policy.required_certifications:
        stages.append((f"policy: certification {cert}", Policy(required_certifications=(cert,))))
    if policy.zero_retention:
        stages.append(("policy: zero retention", Policy(zero_retention=True)))
    return stages


def policy_failure(
    facts: EndpointFacts, stages: list[tuple[str, Policy]]
) -> tuple[str, str] | None:
    """The first policy stage the endpoint fails, with the reason; None when it passes."""
    for name, rule in stages:
        reasons = policy_violations(rule, facts)
        if reasons:
            return name, reasons[0]
    return None


def model_offerings(
    providers: dict[str, Provider], model_name: str
) -> list[tuple[Provider, ProviderModel]]:
    """Active offerings of the model (catalog id `glm-5.1` matches `GLM-5.1`)."""
    wanted = normalize_model_name(model_name)
    out = []
    for provider in providers.values():
        for offering in provider.models:
            if offering.status == "active" and normalize_model_name(offering.model) == wanted:
                out.append((provider, offering))
    return out


def normalize_model_name(name: str) -> str:
    """Lower case, without a trailing weight-format suffix (glm-5.1-fp8 is glm-5.1)."""
    name = name.lower().rsplit("/", 1)[-1]
    for suffix in ("-fp8", "-bf16"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name


def cap_problem(offering: ProviderModel, max_context: int, max_output_tokens: int) -> str | None:
    """Why the offering's context or output cap cannot carry the workload (None: it can)."""
    cap = offering.max_output_tokens
    if cap is not None and cap < max_output_tokens:
        return f"output capped at {cap:,} tokens; the workload asks for up to {max_output_tokens:,}"
    ctx = offering.context_tokens
    if ctx is not None and ctx < max_context:
        return f"context capped at {ctx:,} tokens; the workload needs {max_context:,}"
    return None


def published_slo_problem(
    offer: ManagedOffer, slo: Slo, fastest: tuple[float | None, float | None] = (None, None)
) -> str | None:
    """Why published medians already miss a p99 bound (a median above the p99 bound).

    An offer that publishes nothing is held to `fastest`, the best median TTFT and speed any
    provider of the model publishes: an SLO beyond every published median is beyond it too.
    """
    ttft, speed = offer.best_ttft_s, offer.best_output_tok_per_s
    whose = "published"
    if ttft is None and speed is None:
        ttft, speed = fastest
        whose = "the fastest any provider of the model publishes:"
    if slo.ttft_ms is not None and ttft is not None and ttft * 1e3 > slo.ttft_ms:
        return f"{whose} median TTFT {ttft:.2f} s exceeds the p99 bound {slo.ttft_ms:.0f} ms"
    if slo.tpot_ms is not None and speed is not None and speed < 1e3 / slo.tpot_ms:
        return (
            f"{whose} median {speed:.0f} tok/s per request is below the "
            f"{1e3 / slo.tpot_ms:.0f} tok/s the TPOT bound needs"
        )
    return None
