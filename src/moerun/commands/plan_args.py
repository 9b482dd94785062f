"""`moerun plan` inputs: flags, or a YAML file holding any of them (flags win), -> PlanRequest.

plan.yaml (every key optional):

    model: glm-5.1
    workload: agentic-coding          # a preset, or {preset: NAME, <any preset field>: ...}
    volume: {requests_per_day: 60000, peak_to_average: 2.0}   # or tokens_per_day, hourly_profile
    slo: {ttft_p99_ms: 5000, tpot_p99_ms: 50, min_tokens_per_s: 20}
    policy: {allowed_jurisdictions: [EU], required_certifications: [iso27001],
             zero_retention: true, self_hosted_only: false}
    gpu_clouds: [aws, gcp]            # [] allows none
    providers: [deepinfra]
    budget_usd_per_month: 40000
    prices: negotiated.yaml
    search: {gpus: [h200_sxm], nodes: [1, 2], weights: [fp8], engines: [vllm],
             mtp: [0, 1], disaggregation: true, pricing: [on_demand], simulate: true}
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from moerun.catalog.files import field_path, load_yaml
from moerun.catalog.models import DEFAULT_MODEL, load_spec, model_index
from moerun.catalog.perf.calibration import DEFAULT_MTP_ACCEPTANCE
from moerun.catalog.perf.mtp import acceptance_for
from moerun.catalog.plan_data import (
    PresetEntry,
    get_preset,
    load_presets,
    plan_assumptions,
    preset_fields,
    preset_from_entry,
)
from moerun.catalog.price_overrides import Overrides, read_overrides
from moerun.catalog.prices import load_gpu_prices
from moerun.commands.arg_types import MAX_MTP_TOKENS
from moerun.core.deploy.engine import ENGINES
from moerun.core.load.metrics import Slo
from moerun.core.market.policy import Policy, check_certification, check_jurisdiction
from moerun.core.model.weights import WEIGHT_FORMATS
from moerun.core.plan.demand import DailyProfile, Volume, WorkloadPreset
from moerun.core.plan.plan_request import PlanRequest
from moerun.core.plan.planner import sample_stats
from moerun.errors import UsageError
from moerun.formats.plan_config import PlanConfig

DEFAULT_PRESET = "agentic-coding"
# Search bound (an input limit): replicas beyond 64 nodes.
MAX_NODES = 64
CONFIG_KEYS = (
    "model",
    "workload",
    "volume",
    "slo",
    "policy",
    "gpu_clouds",
    "providers",
    "budget_usd_per_month",
    "prices",
    "search",
)


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _number(text: str) -> float:
    try:
        value = float(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
    return value


def add_plan_args(p: argparse.ArgumentParser) -> None:
    """Every `moerun plan` flag."""
    p.add_argument("--config", help="plan.yaml holding any of these inputs (flags win)")
    p.add_argument("--model", help=f"catalog id or config.json (default {DEFAULT_MODEL})")
    w = p.add_argument_group("workload and volume")
    w.add_argument(
        "--workload", help=f"preset: {', '.join(load_presets())} (default {DEFAULT_PRESET})"
    )
    w.add_argument("--requests-per-day", type=_number, help="requests (API calls) per day")
    w.add_argument("--tokens-per-day", type=_number, help="input + output tokens per day")
    w.add_argument("--peak-to-average", type=_number, help="busiest hour over the daily mean")
    s = p.add_argument_group("SLO (p99)")
    s.add_argument("--slo-ttft-ms", type=_number, help="p99 time to first token")
    s.add_argument("--slo-tpot-ms", type=_number, help="p99 time per output token")
    s.add_argument("--min-tokens-per-s", type=_number, help="minimum output tok/s per user")
    g = p.add_argument_group("policy and budget")
    g.add_argument("--jurisdictions", type=_csv, help="allowed: ISO 3166 codes or EU, e.g. EU,CH")
    g.add_argument("--certifications", type=_csv, help="required, e.g. soc2-type2,hipaa-baa")
    g.add_argument("--zero-retention", action="store_true", default=None)
    g.add_argument("--self-hosted-only", action="store_true", default=None)
    g.add_argument("--gpu-clouds", help="allowed GPU clouds, comma-separated, or 'none'")
    g.add_argument("--providers", type=_csv, help="managed providers to consider")
    g.add_argument("--budget", type=_number, help="USD per month")
    g.add_argument("--prices", help="YAML of negotiated prices replacing catalog prices")
    x = p.add_argument_group("search")
    x.add_argument("--gpus", type=_csv, help="GPU ids (default: every priced GPU)")
    x.add_argument("--nodes", type=_csv, help="node counts per replica (default 1,2,4)")
    x.add_argument(
        "--weights",
        type=_csv,
        help="formats, or 'all' (default: those with a published checkpoint)",
    )
    x.add_argument("--engines", type=_csv, help=f"default {','.join(ENGINES)}")
    x.add_argument("--mtp", type=_csv, help="MTP draft counts to try (default 0,1,2,3)")
    x.add_argument("--pricing", type=_csv, help="on_demand (default), spot, community, ...")
    x.add_argument("--no-disaggregation", action="store_true", default=None)
    x.add_argument(
        "--no-simulate",
        action="store_true",
        default=None,
        help="screen analytically only (faster, less certain)",
    )
    x.add_argument(
        "--allow-unverified",
        action="store_true",
        default=None,
        help="also rank combinations no recipe or cookbook verifies (marked as such); "
        "known-unsupported ones are never ranked",
    )
    x.add_argument("--seed", type=int, default=0)


def read_config(path: str | None) -> dict[str, Any]:
    """The plan.yaml mapping (empty without --config)."""
    if path is None:
        return {}
    try:
        data = load_yaml(Path(path).read_text("utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read --config {path}: {exc.strerror or exc}") from exc
    except Exception as exc:
        raise UsageError(f"--config {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise UsageError(f"--config {path}: expected a mapping of plan inputs")
    unknown = sorted(set(data) - set(CONFIG_KEYS))
    if unknown:
        raise UsageError(
            f"--config {path}: unknown key(s) {', '.join(unknown)}; known: {', '.join(CONFIG_KEYS)}"
        )
    try:
        PlanConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise UsageError(
            f"--config {path}: {field_path(first['loc'])}: {first['msg']} "
            "(see `moerun schema plan-config`)"
        ) from None
    return data


def _section(cfg: dict[str, Any], key: str) -> dict[str, Any]:
    value = cfg.get(key) or {}
    if not isinstance(value, dict):
        raise UsageError(f"plan config: {key} must be a mapping")
    return value


def _preset(args: argparse.Namespace, cfg: dict[str, Any]) -> WorkloadPreset:
    raw = cfg.get("workload", DEFAULT_PRESET)
    if args.workload is not None:
        raw = args.workload
    if isinstance(raw, str):
        return get_preset(raw)
    if not isinstance(raw, dict):
        raise UsageError("plan config: workload must be a preset name or a mapping")
    fields = dict(raw)
    base = get_preset(str(fields.pop("preset", DEFAULT_PRESET)))
    merged = preset_fields(base) | fields
    try:
        return preset_from_entry(base.name + "*", PresetEntry.model_validate(merged))
    except Exception as exc:
        raise UsageError(f"plan config: workload: {exc}".splitlines()[0]) from exc


def _volume(
    args: argparse.Namespace, cfg: dict[str, Any], preset: WorkloadPreset, tokens_per_request: float
) -> Volume:
    v = _section(cfg, "volume")
    requests, tokens = v.get("requests_per_day"), v.get("tokens_per_day")
    if args.requests_per_day is not None or args.tokens_per_day is not None:
        requests, tokens = args.requests_per_day, args.tokens_per_day
    if requests is not None and tokens is not None:
        raise UsageError("give the volume as requests or tokens per day, not both")
    per_day = (
        float(requests)
        if requests is not None
        else (float(tokens) / tokens_per_request if tokens is not None else preset.requests_per_day)
    )
    profile = preset.profile
    try:
        if v.get("hourly_profile") is not None:
            profile = DailyProfile.from_values([float(x) for x in v["hourly_profile"]])
        ratio = (
            args.peak_to_average if args.peak_to_average is not None else v.get("peak_to_average")
        )
        if ratio is not None:
            profile = profile.with_peak_to_average(float(ratio))
    except (TypeError, ValueError) as exc:
        raise UsageError(f"volume: {exc}") from exc
    return Volume(per_day, profile)


def _positive(value: Any, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"{what}: expected a positive number, got {value!r}") from None
    if not number > 0:
        raise UsageError(f"{what}: expected a positive number, got {value!r}")
    return number


def _slo(
    args: argparse.Namespace, cfg: dict[str, Any], preset: WorkloadPreset
) -> tuple[Slo, float | None]:
    s = _section(cfg, "slo")
    ttft = _positive(args.slo_ttft_ms or s.get("ttft_p99_ms") or preset.slo.ttft_ms, "slo ttft")
    tpot = _positive(args.slo_tpot_ms or s.get("tpot_p99_ms") or preset.slo.tpot_ms, "slo tpot")
    raw = args.min_tokens_per_s or s.get("min_tokens_per_s")
    per_user = None if raw is None else _positive(raw, "slo min_tokens_per_s")
    if per_user is not None:
        tpot = min(tpot, 1e3 / per_user)
    return Slo(ttft_ms=ttft, tpot_ms=tpot), per_user


def _policy(args: argparse.Namespace, cfg: dict[str, Any]) -> Policy:
    data = dict(_section(cfg, "policy"))
    if args.jurisdictions is not None:
        data["allowed_jurisdictions"] = [check_jurisdiction(j) for j in args.jurisdictions]
    if args.certifications is not None:
        data["required_certifications"] = [check_certification(c) for c in args.certifications]
    if args.zero_retention:
        data["zero_retention"] = True
    if args.self_hosted_only:
        data["self_hosted_only"] = True
    return Policy.from_dict(data)


def _list(flag: list[str] | None, cfg: dict[str, Any], key: str) -> list[str] | None:
    if flag is not None:
        return flag
    value = cfg.get(key)
    if value is None:
        return None
    if not isinstance(value, list):
        raise UsageError(f"plan config: {key} must be a list")
    return [str(v) for v in value]


def _ints(values: list[str] | None, what: str, default: tuple[int, ...]) -> tuple[int, ...]:
    if values is None:
        return default
    try:
        out = tuple(int(v) for v in values)
    except ValueError:
        raise UsageError(f"--{what}: expected whole numbers, got {','.join(values)}") from None
    if not out or min(out) < 0 or (what == "nodes" and min(out) < 1):
        raise UsageError(f"--{what}: expected {'positive' if what == 'nodes' else '>= 0'} numbers")
    if what == "mtp" and max(out) > MAX_MTP_TOKENS:
        raise UsageError(
            f"--mtp: at most {MAX_MTP_TOKENS} draft tokens (the most the engines' recipes run); "
            f"got {max(out)}"
        )
    if what == "nodes" and max(out) > MAX_NODES:
        raise UsageError(f"--nodes: at most {MAX_NODES} nodes per replica; got {max(out)}")
    return out


def _weights(values: list[str] | None, model: str) -> tuple[str, ...]:
    if values is None:
        entry = model_index().get(model.lower())
        published = tuple(f for f, _ in entry.checkpoints) if entry is not None else ()
        return tuple(f for f in WEIGHT_FORMATS if f in published) or WEIGHT_FORMATS
    if values == ["all"]:
        return WEIGHT_FORMATS
    bad = [v for v in values if v not in WEIGHT_FORMATS]
    if bad:
        raise UsageError(
            f"--weights: unknown format(s) {', '.join(bad)}; "
            f"choose from {', '.join(WEIGHT_FORMATS)} or 'all'"
        )
    return tuple(values)


def request_from_args(
    args: argparse.Namespace, gpu_ids: set[str], cloud_ids: set[str], provider_ids: set[str]
) -> tuple[PlanRequest, Overrides | None]:
    """The PlanRequest the flags and config describe, and the --prices overrides."""
    cfg = read_config(args.config)
    model = args.model or cfg.get("model") or DEFAULT_MODEL
    spec = load_spec(str(model))
    preset = _preset(args, cfg)
    stats = sample_stats(preset, spec, args.seed)
    volume = _volume(args, cfg, preset, stats.tokens_per_request)
    slo, per_user = _slo(args, cfg, preset)
    search = _section(cfg, "search")
    gpus = _list(args.gpus, search, "gpus")
    if gpus is not None:
        bad = [g for g in gpus if g not in gpu_ids]
        if bad:
            raise UsageError(
                f"--gpus: unknown GPU id(s) {', '.join(bad)}; valid: {', '.join(sorted(gpu_ids))}"
            )
    prices_path = args.prices or cfg.get("prices")
    overrides = read_overrides(Path(str(prices_path))) if prices_path else None
    added = {g.provider for g in overrides.gpu} if overrides is not None else set()
    clouds = _clouds(args, cfg, cloud_ids | added)
    engines = _list(args.engines, search, "engines") or list(ENGINES)
    bad = [e for e in engines if e not in ENGINES]
    if bad:
        raise UsageError(
            f"--engines: unknown engine(s) {', '.join(bad)}; choose from {', '.join(ENGINES)}"
        )
    pricing = tuple(_list(args.pricing, search, "pricing") or ["on_demand"])
    kinds = {p.pricing for p in load_gpu_prices()}
    kinds |= {g.pricing for g in overrides.gpu if g.pricing} if overrides is not None else set()
    unknown = sorted(set(pricing) - kinds)
    if unknown:
        raise UsageError(
            f"--pricing: no price of kind {', '.join(unknown)} in the catalog; kinds: "
            f"{', '.join(sorted(kinds))} (put a reserved or negotiated rate in a --prices file)"
        )
    if overrides is not None:  # a negotiated rate is meant to be used, whatever its kind
        pricing += tuple(sorted({g.pricing for g in overrides.gpu if g.pricing} - set(pricing)))
    budget = args.budget if args.budget is not None else cfg.get("budget_usd_per_month")
    budget = None if budget is None else _positive(budget, "budget_usd_per_month")
    assumptions = plan_assumptions()
    mtp_options = _ints(_list(args.mtp, search, "mtp"), "mtp", (0, 1, 2, 3))
    by_tokens, span, source = _acceptance(spec.name, mtp_options)
    request = PlanRequest(
        model=spec,
        preset=preset,
        volume=volume,
        slo=slo,
        policy=_policy(args, cfg),
        gpu_clouds=clouds,
        providers=_providers(args, cfg, provider_ids),
        pricing=pricing,
        budget_usd_per_month=budget,
        gpus=tuple(gpus) if gpus else None,
        node_counts=_ints(_list(args.nodes, search, "nodes"), "nodes", (1, 2, 4)),
        weights=_weights(_list(args.weights, search, "weights"), str(model)),
        engines=tuple(engines),
        mtp_options=mtp_options,
        disaggregation=not (args.no_disaggregation or search.get("disaggregation") is False),
        simulate=not (args.no_simulate or search.get("simulate") is False),
        allow_unverified=bool(args.allow_unverified or search.get("allow_unverified")),
        mtp_acceptance=DEFAULT_MTP_ACCEPTANCE,
        mtp_acceptance_by_tokens=by_tokens,
        mtp_acceptance_range=span,
        mtp_acceptance_source=source,
        api_cache_hit_fraction=assumptions.api_cache_hit_fraction,
        hours_per_month=assumptions.hours_per_month,
        min_tok_per_s_per_user=per_user,
        seed=args.seed,
    )
    request.check()
    return request, overrides


def _acceptance(
    model_id: str, mtp_options: tuple[int, ...]
) -> tuple[tuple[tuple[int, float], ...], tuple[float, float] | None, str]:
    """Measured acceptance for the model on real text (plan presets are real traffic) per MTP
    draft count, the range its measurements span (random benchmark prompts to text), and
    the sources; nothing when the catalog has no measurement for the model."""
    table, lows, highs, sources = [], [], [], []
    for k in mtp_options:
        choice = acceptance_for(model_id, "text", k) if k else None
        if choice is None:
            continue
        table.append((k, choice.value))
        lows.append(choice.low)
        highs.append(choice.high)
        sources.append(choice.row.source)
    if not table:
        return (), None, ""
    return tuple(table), (min(lows), max(highs)), "; ".join(sorted(set(sources)))


def _clouds(
    args: argparse.Namespace, cfg: dict[str, Any], known: set[str]
) -> tuple[str, ...] | None:
    if args.gpu_clouds is not None:
        raw = [] if args.gpu_clouds.strip().lower() == "none" else _csv(args.gpu_clouds)
    elif "gpu_clouds" in cfg:
        raw = _list(None, cfg, "gpu_clouds") or []
    else:
        return None
    bad = [c for c in raw if c not in known]
    if bad:
        raise UsageError(
            f"--gpu-clouds: unknown cloud(s) {', '.join(bad)}; known: {', '.join(sorted(known))}"
        )
    return tuple(raw)


def _providers(
    args: argparse.Namespace, cfg: dict[str, Any], known: set[str]
) -> tuple[str, ...] | None:
    named = _list(args.providers, cfg, "providers")
    if not named:
        return None
    bad = [p for p in named if p not in known]
    if bad:
        raise UsageError(
            f"--providers: unknown provider(s) {', '.join(bad)}; known: {', '.join(sorted(known))}"
        )
    return tuple(named)
