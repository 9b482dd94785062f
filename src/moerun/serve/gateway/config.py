"""The gateway's settings as frozen values, built from the YAML file and the environment.

Errors name the file and the field (`gw.yaml: backends[1].api_key_env: ...`). Secrets are read
from the environment mapping given here, once, and are kept out of every repr.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import yaml
from pydantic import ValidationError

from moerun.catalog.engines import sgl_router_balance
from moerun.catalog.files import field_path, load_yaml
from moerun.catalog.loader import load_providers
from moerun.core.market.policy import EndpointFacts, Policy, check_certification, check_jurisdiction
from moerun.core.market.providers import Provider
from moerun.core.traffic.circuit import BreakerConfig
from moerun.core.traffic.metering import Prices
from moerun.core.traffic.routing import SELF_HOSTED, RoutingConfig
from moerun.errors import GatewayConfigError, MoerunError
from moerun.serve.gateway.schema import BackendEntry, GatewayFile, KeyEntry

MASTER_KEY_ENV = "MOERUN_MASTER_KEY"
METRICS_TOKEN_ENV = "MOERUN_METRICS_TOKEN"


@dataclass(frozen=True, slots=True)
class BackendSpec:
    """One backend as the gateway uses it; `api_key` never appears in a repr."""

    name: str
    kind: str
    base_url: str
    model: str | None  # None: the public model name is passed through
    facts: EndpointFacts
    prices: Prices
    weight: float = 1.0
    region: str | None = None
    health_check: bool = True
    health_path: str = "/models"
    api_key: str | None = field(default=None, repr=False)
    max_output_tokens: int | None = None  # output cap: budgets reserve up to it


@dataclass(frozen=True, slots=True)
class KeySpec:
    """One gateway API key: its SHA-256 digest, policy, limits and budget."""

    name: str
    digest: bytes
    policy: Policy
    budget_usd: float | None = None
    budget_period: str = "month"
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    models: tuple[str, ...] | None = None  # None: every model


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """Everything the gateway needs, validated."""

    backends: dict[str, BackendSpec]
    models: dict[str, tuple[str, ...]]
    keys: tuple[KeySpec, ...] | None  # None: no authentication and no policy
    settings: GatewayFile  # timeouts, retries, health, server, ledger (validated values)
    routing: RoutingConfig
    breaker: BreakerConfig
    database_url: str
    redis_url: str | None
    # From MOERUN_MASTER_KEY: enables /key/* (and authentication, even without YAML keys).
    master_key: str | None = field(default=None, repr=False)
    # From MOERUN_METRICS_TOKEN: opens /metrics and /health details when they are protected.
    metrics_token: str | None = field(default=None, repr=False)

    @property
    def authenticates(self) -> bool:
        """Whether requests need a key (YAML keys, or keys managed live)."""
        return self.keys is not None or self.master_key is not None


def load_config(path: str | Path, env: Mapping[str, str]) -> GatewayConfig:
    """Read, validate and resolve a gateway config file."""
    path = Path(path)
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise GatewayConfigError(f"cannot read gateway config {path}: {exc.strerror}") from exc
    return parse_config(text, env, filename=str(path))


def parse_config(text: str, env: Mapping[str, str], filename: str = "<config>") -> GatewayConfig:
    """Validate config YAML text; errors name the file and field."""
    try:
        raw = load_yaml(text)
    except yaml.YAMLError as exc:
        raise GatewayConfigError(f"{filename}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise GatewayConfigError(f"{filename}: expected a mapping at the top level")
    try:
        data = GatewayFile.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        more = exc.error_count() - 1
        raise GatewayConfigError(
            f"{filename}: {field_path(first['loc'])}: {first['msg'].lower()}"
            + (f" (and {more} more errors)" if more else "")
        ) from exc
    try:
        return _resolve(data, env)
    except MoerunError as exc:
        raise GatewayConfigError(f"{filename}: {exc}") from exc


def _resolve(data: GatewayFile, env: Mapping[str, str]) -> GatewayConfig:
    providers = load_providers() if any(b.provider for b in data.backends) else {}
    backends: dict[str, BackendSpec] = {}
    for i, entry in enumerate(data.backends):
        if entry.name in backends:
            raise GatewayConfigError(f"backends[{i}].name: duplicate backend {entry.name!r}")
        backends[entry.name] = _backend(f"backends[{i}]", entry, providers, env)
    models: dict[str, tuple[str, ...]] = {}
    for public, names in data.models.items():
        if not names:
            raise GatewayConfigError(f"models.{public}: list at least one backend")
        for name in names:
            if name not in backends:
                raise GatewayConfigError(f"models.{public}: no backend named {name!r}")
        models[public] = tuple(dict.fromkeys(names))
    keys = None if data.keys is None else tuple(_keys(data.keys, models))
    r, o = data.routing, data.overflow
    default = sgl_router_balance()
    routing = RoutingConfig(
        policy=r.policy,
        block_chars=r.block_chars,
        prefix_weight=r.prefix_weight,
        load_weight=r.load_weight,
        balance=default.with_overrides(r.balance_abs, r.balance_rel),
        session_ttl_s=r.session_ttl_s,
        max_sessions=r.max_sessions,
        max_session_bytes=r.max_session_table_bytes,
        overflow_in_flight=o.max_in_flight_per_replica,
        overflow_ttft_s=o.ttft_s,
        cost_weight=r.cost_weight,
        latency_weight=r.latency_weight,
    )
    breaker = BreakerConfig(
        failure_threshold=data.circuit_breaker.failure_threshold,
        cooldown_s=data.circuit_breaker.cooldown_s,
    )
    master_key = env.get(MASTER_KEY_ENV) or None
    metrics_token = env.get(METRICS_TOKEN_ENV) or None
    if data.server.protect_details and not (master_key or metrics_token):
        raise GatewayConfigError(
            f"server.protect_details: set {MASTER_KEY_ENV} or {METRICS_TOKEN_ENV} in the "
            "environment, or nobody can read /metrics"
        )
    database_url = _url_from_env(data, "database_url", env) or data.database_url
    redis_url = _url_from_env(data, "redis_url", env) or data.redis_url
    return GatewayConfig(
        backends=backends,
        models=models,
        keys=keys,
        settings=data,
        routing=routing,
        breaker=breaker,
        database_url=database_url,
        redis_url=redis_url,
        master_key=master_key,
        metrics_token=metrics_token,
    )


def _url_from_env(data: GatewayFile, field_name: str, env: Mapping[str, str]) -> str | None:
    """The URL named by `<field>_env`, if given; both spellings at once is an error."""
    var = getattr(data, field_name + "_env")
    if var is None:
        return None
    if field_name in data.model_fields_set:
        raise GatewayConfigError(f"give {field_name} or {field_name}_env, not both")
    value = env.get(var)
    if not value:
        raise GatewayConfigError(f"{field_name}_env: environment variable {var} is not set")
    return value


def _keys(entries: list[KeyEntry], models: dict[str, tuple[str, ...]]) -> list[KeySpec]:
    out: list[KeySpec] = []
    seen_names: set[str] = set()
    seen_digests: set[bytes] = set()
    for i, k in enumerate(entries):
        digest = bytes.fromhex(k.key_sha256)
        if k.name in seen_names or digest in seen_digests:
            raise GatewayConfigError(f"keys[{i}]: duplicate key name or key_sha256 ({k.name!r})")
        seen_names.add(k.name)
        seen_digests.add(digest)
        try:
            policy = Policy.from_dict(k.policy)
        except MoerunError as exc:
            raise GatewayConfigError(f"keys[{i}].policy: {exc}") from exc
        for model in k.models or ():
            if model not in models:
                raise GatewayConfigError(f"keys[{i}].models: no model named {model!r}")
        out.append(
            KeySpec(
                name=k.name,
                digest=digest,
                policy=policy,
                budget_usd=k.budget_usd,
                budget_period=k.budget_period,
                requests_per_minute=k.requests_per_minute,
                tokens_per_minute=k.tokens_per_minute,
                models=tuple(k.models) if k.models else None,
            )
        )
    return out


def _backend(
    where: str, b: BackendEntry, providers: dict[str, Provider], env: Mapping[str, str]
) -> BackendSpec:
    provider = None
    if b.provider is not None:
        provider = providers.get(b.provider)
        if provider is None:
            raise GatewayConfigError(
                f"{where}.provider: {b.provider!r} is not in the provider catalog; "
                f"known: {', '.join(sorted(providers))}"
            )
    base_url = b.base_url or (provider.base_url if provider else None)
    if not base_url:
        raise GatewayConfigError(f"{where}.base_url: give the backend's base URL")
    if urlsplit(base_url).hostname is None:
        raise GatewayConfigError(f"{where}.base_url: {base_url!r} has no host")
    api_key = None
    if b.api_key_env is not None:
        api_key = env.get(b.api_key_env)
        if not api_key:
            raise GatewayConfigError(
                f"{where}.api_key_env: environment variable {b.api_key_env} is not set"
            )
    return BackendSpec(
        name=b.name,
        kind=b.kind,
        base_url=base_url,
        model=b.model,
        facts=_facts(where, b, provider),
        prices=_prices(where, b, provider),
        weight=b.weight,
        region=b.region,
        health_check=b.health_check if b.health_check is not None else b.kind == SELF_HOSTED,
        health_path=b.health_path,
        api_key=api_key,
        max_output_tokens=b.max_output_tokens or _catalog_output_cap(b, provider),
    )


def _facts(where: str, b: BackendEntry, provider: Provider | None) -> EndpointFacts:
    try:
        if b.jurisdiction is not None:
            jurisdictions: tuple[str, ...] = (check_jurisdiction(b.jurisdiction),)
        else:
            jurisdictions = provider.jurisdiction if provider else ()
        if b.certifications is not None:
            # The operator vouches for what it lists (its own audit, a signed BAA).
            certs = {check_certification(c): "verified" for c in b.certifications}
        else:
            certs = dict(provider.certifications) if provider else {}
    except MoerunError as exc:
        raise GatewayConfigError(f"{where}: {exc}") from exc
    if b.zero_retention is not None:
        retention = "zero" if b.zero_retention else "stored"
    else:
        retention = provider.retention if provider else "unknown"
    return EndpointFacts(
        kind=b.kind, jurisdictions=jurisdictions, certifications=certs, retention=retention
    )


def _prices(where: str, b: BackendEntry, provider: Provider | None) -> Prices:
    listed: dict[str, float | None] = {}
    if provider is not None and b.model is not None:
        for m in provider.models:
            if b.model in (m.model_id, m.model):
                listed = {
                    "input": m.input_usd_per_mtok,
                    "cached": m.cached_input_usd_per_mtok,
                    "output": m.output_usd_per_mtok,
                }
                break
    default = 0.0 if b.kind == SELF_HOSTED else None
    inp = _first(b.input_usd_per_mtok, listed.get("input"), default)
    out = _first(b.output_usd_per_mtok, listed.get("output"), default)
    if inp is None or out is None:
        raise GatewayConfigError(
            f"{where}: no token prices for managed backend {b.name!r}"
            + (f" (model {b.model!r} has none in the {b.provider} catalog)" if b.provider else "")
            + "; set input_usd_per_mtok and output_usd_per_mtok so usage can be metered"
        )
    cached = _first(b.cached_input_usd_per_mtok, listed.get("cached"), inp)
    assert cached is not None
    return Prices(input_usd_per_mtok=inp, cached_input_usd_per_mtok=cached, output_usd_per_mtok=out)


def _catalog_output_cap(b: BackendEntry, provider: Provider | None) -> int | None:
    if provider is None or b.model is None:
        return None
    for m in provider.models:
        if b.model in (m.model_id, m.model):
            return m.max_output_tokens
    return None


def _first(*values: float | None) -> float | None:
    return next((v for v in values if v is not None), None)
