"""A plan as JSON-ready dicts: the ranked options `moerun deploy PLAN.json` reads, and the why.

Each option: rank, kind (self-hosted | managed | hybrid), replicas, deployment (the deployment
flags in snake_case, or null), disaggregation (null or prefill/decode deployments with their
instance counts), managed (null or provider, model, base_url), cost, performance, memory,
quality and notes.
"""

from __future__ import annotations

from typing import Any

from moerun.core.deploy.deployment import Deployment
from moerun.core.plan.planner import PlanResult
from moerun.core.plan.recommend import FOUR_BIT, Option, SelfHosted

GB = 1e9


def deployment_dict(dep: Deployment) -> dict[str, Any]:
    """Exactly the deployment flags, in snake_case, with the values the plan assumed."""
    par = dep.parallel
    return {
        "model": dep.model.name,
        "gpu": dep.gpu.id,
        "num_gpus": dep.num_gpus,
        "weights": dep.weights,
        "kv_dtype": dep.kv_dtype,
        "engine": dep.engine.name,
        "tp": par.tp,
        "dp": par.dp,
        "ep": par.ep,
        "pp": par.pp,
        "mtp": dep.mtp.num_draft_tokens,
        "max_context": dep.effective_max_context,
        "mem_fraction": round(dep.effective_mem_fraction, 4),
        "max_num_batched_tokens": dep.batched_tokens,
        # null: the engine's own default, which the plan priced (SGLang sizes it from memory)
        "max_num_seqs": dep.max_num_seqs,
        # SGLang only: off and null (its own default) unless the deployment set them
        "mixed_chunk": dep.mixed_chunk,
        "max_prefill_tokens": dep.max_prefill_tokens,
    }


def option_dict(rank: int, o: Option, weight_notes: dict[str, str]) -> dict[str, Any]:
    """One ranked option."""
    sh = o.self_hosted
    out: dict[str, Any] = {
        "rank": rank,
        "kind": o.kind,
        "label": o.label,
        "replicas": sh.cost.peak_replicas if sh else 1,
        "deployment": None,
        "disaggregation": None,
        "managed": None,
    }
    if sh is not None:
        units = sh.cost.peak_replicas
        d = deployment_dict(sh.screened.dep)
        if sh.screened.disaggregation:
            x, y = sh.screened.disaggregation
            out["disaggregation"] = {
                "prefill": {"deployment": d, "instances": x * units},
                "decode": {"deployment": d, "instances": y * units},
            }
        else:
            out["deployment"] = d
    if o.managed is not None:
        m = o.managed
        out["managed"] = {
            "provider": m.provider.id,
            "model": m.model.model_id or m.model.listed_as,
            "base_url": m.provider.base_url,
        }
    out["cost"] = _cost(o)
    out["performance"] = _performance(o)
    out["memory"] = _memory(sh) if sh else None
    weights = sh.screened.dep.weights if sh else None
    out["quality"] = (
        {"weights": weights, "note": weight_notes.get(weights, "")} if weights in FOUR_BIT else None
    )
    out["support"] = o.support.as_dict() if o.support is not None else None
    out["notes"] = list(o.notes)
    return out


def _cost(o: Option) -> dict[str, Any]:
    sh = o.self_hosted
    cost: dict[str, Any] = {
        "usd_per_month": round(o.usd_per_month, 2),
        "usd_per_day": round(o.usd_per_day, 2),
        "usd_per_mtok_blended": round(o.usd_per_mtok_blended, 4),
    }
    if o.kind == "self-hosted" and sh is not None:
        c = sh.cost
        cost |= {
            "usd_per_mtok_input": round(c.usd_per_mtok_input, 4),
            "usd_per_mtok_output": round(c.usd_per_mtok_output, 4),
            "utilization": round(c.utilization, 4),
        }
    if sh is not None:
        p = sh.cloud.price
        cost |= {
            "usd_per_hour_peak": round(sh.cost.peak_replicas * sh.cost.usd_per_replica_hour, 2),
            "replicas_by_hour": list(sh.cost.schedule),
            "gpu_price": {
                "provider": p.provider,
                "region": p.region,
                "pricing": p.pricing,
                "usd_per_gpu_hour": p.usd_per_gpu_hour,
                "source": list(p.source),
                "as_of": p.as_of,
                "overridden": sh.cloud.overridden,
            },
        }
    if o.managed is not None:
        m = o.managed.model
        cost["api_price"] = {
            "input_usd_per_mtok": m.input_usd_per_mtok,
            "cached_input_usd_per_mtok": m.cached_input_usd_per_mtok,
            "output_usd_per_mtok": m.output_usd_per_mtok,
            "usd_per_request": round(o.managed.usd_per_request, 6),
            "source": list(m.source),
            "as_of": m.as_of,
        }
        if o.kind == "managed":
            prices = o.managed.prices
            cost["usd_per_mtok_output"] = prices.output_usd_per_mtok
    if o.hybrid is not None:
        cost["overflow_share"] = round(o.hybrid.overflow_share, 4)
    return cost


def _performance(o: Option) -> dict[str, Any]:
    sh = o.self_hosted
    perf: dict[str, Any] = {}
    if sh is not None:
        p = sh.perf
        perf |= {
            "capacity_req_per_s_per_replica": round(p.capacity_req_per_s, 4),
            "ttft_p99_ms": p.ttft_p99_ms,
            "tpot_p99_ms": p.tpot_p99_ms,
            "source": p.source,
            "calibration": {
                "status": p.calibration_status,
                "error_band_pct": p.error_band_pct,
                "error_band_basis": p.error_band_basis,
                "other_model": p.calibration_models or None,
                "other_layout": p.calibration_layouts or None,
            },
            "steady_state_reached": p.warmed_up,
            "simulated_at_req_per_s": p.simulated_req_per_s,
        }
    if o.managed is not None:
        perf["published"] = {
            "median_ttft_s": o.managed.best_ttft_s,
            "median_output_tok_per_s": o.managed.best_output_tok_per_s,
            "p99_verified": False,
        }
    return perf


def _memory(sh: SelfHosted) -> dict[str, Any]:
    f = sh.screened.fit
    return {
        "gpu_memory_gb": round(f.gpu_memory_bytes / GB, 2),
        "weights_gb_per_gpu": round(f.weights_bytes_per_gpu / GB, 2),
        "kv_gb_per_gpu": round(f.kv_free_bytes_per_gpu / GB, 2),
        "reserve_gb_per_gpu": round(f.reserve_bytes_per_gpu / GB, 2),
        "kv_capacity_tokens": f.kv_capacity_tokens,
    }


def plan_dict(r: PlanResult, weight_notes: dict[str, str]) -> dict[str, Any]:
    """The whole plan."""
    req, st = r.request, r.stats
    options = [option_dict(i + 1, o, weight_notes) for i, o in enumerate(r.options)]
    be = None
    if r.break_even_between is not None:
        own, api = r.break_even_between
        be = {
            "requests_per_day": r.break_even_requests_per_day,
            "tokens_per_day": (
                r.break_even_requests_per_day * st.tokens_per_request
                if r.break_even_requests_per_day
                else None
            ),
            "self_hosted": own.label,
            "managed": api.label,
            # the break-even with the fleet's capacity off by its typical throughput error
            # (null requests: not below 1000x; null: that error was never measured)
            "within_throughput_error": None
            if r.break_even_band is None
            else {
                "band_pct": r.break_even_band.band_pct,
                "faster_requests_per_day": r.break_even_band.optimistic_requests_per_day,
                "slower_requests_per_day": r.break_even_band.pessimistic_requests_per_day,
            },
        }
    return {
        "model": req.model.name,
        "workload": {
            "preset": req.preset.name,
            "mean_input_tokens": round(st.mean_input_tokens, 1),
            "mean_cached_tokens": round(st.mean_cached_tokens, 1),
            "mean_output_tokens": round(st.mean_output_tokens, 1),
            "max_context": req.preset.max_context,
            "max_output_tokens": req.preset.max_output_tokens,
        },
        "volume": {
            "requests_per_day": req.volume.requests_per_day,
            "tokens_per_day": req.volume.requests_per_day * st.tokens_per_request,
            "peak_to_average": round(req.volume.profile.peak_to_average, 3),
            "hourly_profile": [round(v, 4) for v in req.volume.profile.hourly],
        },
        "slo": {
            "ttft_p99_ms": req.slo.ttft_ms,
            "tpot_p99_ms": req.slo.tpot_ms,
            "min_tokens_per_s_per_user": req.min_tok_per_s_per_user,
        },
        "policy": {
            "allowed_jurisdictions": list(req.policy.allowed_jurisdictions),
            "required_certifications": list(req.policy.required_certifications),
            "zero_retention": req.policy.zero_retention,
            "self_hosted_only": req.policy.self_hosted_only,
            "gpu_clouds": list(req.gpu_clouds) if req.gpu_clouds is not None else None,
            "budget_usd_per_month": req.budget_usd_per_month,
        },
        "recommendation": options[0]["label"] if options else None,
        "options": options,
        "nothing_meets": None
        if options
        else {
            "emptied_by": r.funnel.emptied_by,
            "closest": r.closest,
        },
        "excluded": [
            {"constraint": e.constraint, "kind": e.kind, "subject": e.subject, "reason": e.reason}
            for e in r.exclusions
        ],
        "funnel": {
            "endpoints": r.funnel.total,
            "stages": [{"constraint": n, "remaining": left} for n, left in r.funnel.stages],
            "emptied_by": r.funnel.emptied_by,
        },
        "not_ranked_support": [{"label": h.label, **h.support.as_dict()} for h in r.held_out],
        "allow_unverified": req.allow_unverified,
        "break_even": be,
        "overridden_prices": list(r.overridden),
        "unpriced_gpus": list(r.unpriced_gpus),
        "search": {
            "deployments": r.search.num_deployments,
            "fitting": r.search.num_fitting,
            "screened": r.search.num_screened,
            "meeting_slo_analytic": len(r.search.feasible),
        },
        "mtp_acceptance": {
            "by_draft_tokens": {str(k): round(a, 4) for k, a in req.mtp_acceptance_by_tokens},
            "range": list(req.mtp_acceptance_range) if req.mtp_acceptance_range else None,
            "source": req.mtp_acceptance_source or None,
            "sensitivity": [
                {
                    "label": p.label,
                    "acceptance": round(p.acceptance, 4),
                    "capacity_req_per_s_per_replica": round(p.capacity_req_per_s, 4),
                    "output_tok_per_s_per_gpu": round(p.output_tok_per_s_per_gpu, 2),
                    "usd_per_request_at_capacity": p.usd_per_request,
                }
                for p in r.acceptance_sensitivity
            ],
        },
        "assumptions": assumptions(r),
    }


def _acceptance_assumption(r: PlanResult) -> str:
    req = r.request
    if not req.mtp_acceptance_by_tokens:
        return f"MTP acceptance {req.mtp_acceptance:.2f} per drafted token"
    table = ", ".join(f"{a:.2f} at {k}" for k, a in req.mtp_acceptance_by_tokens)
    return (
        f"MTP acceptance per drafted token, measured on real text: {table} drafts "
        f"({req.mtp_acceptance_source})"
    )


def assumptions(r: PlanResult) -> list[str]:
    """The stated assumptions behind every number."""
    req = r.request
    return [
        f"workload preset {req.preset.name!r}: "
        + "; ".join(req.preset.notes or (req.preset.description,)),
        f"a month is {req.hours_per_month:g} hours; traffic follows the hourly profile "
        f"(peak {req.volume.profile.peak_to_average:.2f}x the daily mean)",
        f"APIs bill {req.api_cache_hit_fraction:.0%} of the reusable prompt prefix at the "
        "cached-input price (provider caches are best effort)",
        _acceptance_assumption(r),
        "self-hosted capacity is the highest load whose p99 TTFT and TPOT meet the SLO; "
        "fleets are sized for each hour's load, on the cheapest allowed cloud price",
        "self-hosted $/Mtok split the GPU bill between input and output by GPU time",
    ]
