"""Everything `moerun plan` chooses from, loaded from the catalog (plus a --prices file)."""

from __future__ import annotations

import functools

from moerun.catalog.cloud_trust import load_cloud_trust
from moerun.catalog.engines import get_engine, get_reserve
from moerun.catalog.gpus import load_gpus
from moerun.catalog.perf.calibration import calibration_for
from moerun.catalog.plan_data import load_cloud_billing, load_weight_quality
from moerun.catalog.price_overrides import Overrides, apply_api_overrides, apply_gpu_overrides
from moerun.catalog.prices import load_gpu_prices
from moerun.catalog.providers import load_providers
from moerun.catalog.support import load_support
from moerun.core.deploy.engine import ENGINES
from moerun.core.market.offers import CloudOffer
from moerun.core.plan.plan_request import PlanCatalog


def plan_catalog(overrides: Overrides | None = None) -> PlanCatalog:
    """The packaged catalog as the planner's values, with any price overrides applied."""
    gpus = load_gpus()
    billing = load_cloud_billing()
    trust = load_cloud_trust()
    clouds = [
        CloudOffer(
            p,
            certifications=dict(trust[p.provider].certifications) if p.provider in trust else {},
            billing_increment_s=billing[p.provider].billing_increment_s
            if p.provider in billing
            else None,
        )
        for p in load_gpu_prices()
    ]
    providers = load_providers()
    notes: list[str] = []
    if overrides is not None:
        clouds, gpu_notes = apply_gpu_overrides(clouds, overrides, set(gpus))
        providers, api_notes = apply_api_overrides(providers, overrides)
        notes = gpu_notes + api_notes
    return PlanCatalog(
        gpus=gpus,
        engines={e: get_engine(e) for e in ENGINES},
        reserve=get_reserve(),
        clouds=tuple(clouds),
        providers=providers,
        calibration=functools.cache(calibration_for),
        weight_notes={f: q.note for f, q in load_weight_quality().items()},
        overridden=tuple(notes),
        support=load_support(),
    )
