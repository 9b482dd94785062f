"""Pydantic schema of the gateway's YAML config file; used only to validate it on load."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Strict(BaseModel):
    """Base: unknown keys are errors, so a typo in a field name cannot pass silently."""

    model_config = ConfigDict(extra="forbid")


class BackendEntry(_Strict):
    """One backend: a self-hosted replica or a managed API."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    kind: Literal["self-hosted", "managed"]
    base_url: str | None = Field(default=None, pattern=r"^https?://")
    model: str | None = None
    provider: str | None = None
    api_key_env: str | None = None
    jurisdiction: str | None = None
    region: str | None = None
    certifications: list[str] | None = None
    zero_retention: bool | None = None
    input_usd_per_mtok: float | None = Field(default=None, ge=0)
    cached_input_usd_per_mtok: float | None = Field(default=None, ge=0)
    output_usd_per_mtok: float | None = Field(default=None, ge=0)
    max_output_tokens: int | None = Field(default=None, gt=0)
    weight: float = Field(default=1.0, gt=0)
    health_check: bool | None = None
    health_path: str = "/models"


class KeyEntry(_Strict):
    """One gateway API key (stored as its SHA-256), with its policy, limits and budget."""

    name: str = Field(min_length=1)
    key_sha256: str = Field(pattern=r"^[0-9a-fA-F]{64}$")

    @field_validator("key_sha256", mode="before")
    @classmethod
    def _quoted(cls, value: Any) -> Any:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            raise ValueError(
                'an all-digit digest reads as a number in YAML: quote it (key_sha256: "0123...")'
            )
        return value

    policy: dict[str, Any] | None = None
    budget_usd: float | None = Field(default=None, ge=0)
    budget_period: Literal["day", "week", "month"] = "month"
    requests_per_minute: int | None = Field(default=None, gt=0)
    tokens_per_minute: int | None = Field(default=None, gt=0)
    models: list[str] | None = None  # the public models it may use; absent: all


class ServerEntry(_Strict):
    """HTTP front door: size and time limits per connection, connection cap, access logs."""

    max_body_bytes: int = Field(default=4 * 1024 * 1024, gt=0)
    max_head_bytes: int = Field(default=64 * 1024, ge=1024)
    header_timeout_s: float = Field(default=10.0, gt=0)
    body_timeout_s: float = Field(default=60.0, gt=0)
    keep_alive_s: float = Field(default=75.0, gt=0)
    max_connections: int = Field(default=8192, gt=0)
    access_log: bool = True
    # /metrics and /health's per-backend details need `Authorization: Bearer` with the master
    # key or MOERUN_METRICS_TOKEN; /health's status (for probes) stays open.
    protect_details: bool = False


class TimeoutsEntry(_Strict):
    """Upstream timeouts: connect, response headers / first byte, idle between chunks, total."""

    connect_s: float = Field(default=5.0, gt=0)
    first_byte_s: float = Field(default=120.0, gt=0)
    read_s: float = Field(default=120.0, gt=0)
    total_s: float = Field(default=300.0, gt=0)  # a non-streamed answer's whole wait


class RetriesEntry(_Strict):
    """Attempts per request (first try included) and the backoff between them."""

    max_attempts: int = Field(default=3, ge=1, le=10)
    backoff_base_s: float = Field(default=0.05, ge=0)
    backoff_cap_s: float = Field(default=2.0, ge=0)


class BreakerEntry(_Strict):
    """Circuit breaker per backend."""

    failure_threshold: int = Field(default=5, ge=1)
    cooldown_s: float = Field(default=10.0, gt=0)


class HealthEntry(_Strict):
    """Background health probes (self-hosted backends by default, managed only if asked)."""

    interval_s: float = Field(default=5.0, gt=0)
    timeout_s: float = Field(default=2.0, gt=0)


class RoutingEntry(_Strict):
    """Routing knobs; see moerun.core.traffic.routing.RoutingConfig."""

    session_header: str = "x-session-id"
    policy: Literal["prefix-affinity", "round-robin", "least-load"] = "prefix-affinity"
    block_chars: int = Field(default=64, gt=0)
    # sgl-router's load-imbalance thresholds; None: its defaults from the catalog
    balance_abs: float | None = Field(default=None, ge=0)
    balance_rel: float | None = Field(default=None, ge=1)
    prefix_weight: float = Field(default=3.0, ge=0)
    load_weight: float = Field(default=2.0, ge=0)
    cost_weight: float = Field(default=1.0, ge=0)
    latency_weight: float = Field(default=1.0, ge=0)
    session_ttl_s: float = Field(default=1800.0, gt=0)
    max_session_id_bytes: int = Field(default=256, gt=0)
    max_sessions: int = Field(default=100_000, gt=0)
    max_session_table_bytes: int = Field(default=32 * 1024 * 1024, gt=0)


class OverflowEntry(_Strict):
    """When self-hosted replicas stop keeping up and new requests spill to managed ones."""

    max_in_flight_per_replica: float | None = Field(default=None, gt=0)
    ttft_s: float | None = Field(default=None, gt=0)


class LedgerEntry(_Strict):
    """Usage ledger durability: "normal" survives a gateway crash, "full" also a power cut;
    commits that take longer than `commit_timeout_s` go to the spool in `spool_dir` (default:
    beside a SQLite file, else ~/.local/state/moerun/spool/<hash of the URL>) and are
    replayed later."""

    sync: Literal["normal", "full"] = "normal"
    commit_timeout_s: float = Field(default=2.0, gt=0)
    spool_dir: str | None = Field(default=None, min_length=1)


class TracingEntry(_Strict):
    """OpenTelemetry traces (GenAI semantic conventions) over OTLP/HTTP; off without an
    endpoint, e.g. http://otel-collector:4318/v1/traces."""

    otlp_endpoint: str | None = Field(default=None, pattern=r"^https?://")
    service_name: str = "moerun-gateway"
    sample_ratio: float = Field(default=1.0, ge=0, le=1)
    export_interval_s: float = Field(default=1.0, gt=0)
    timeout_s: float = Field(default=5.0, gt=0)


class GatewayFile(_Strict):
    """The whole gateway config file."""

    backends: list[BackendEntry] = Field(min_length=1)
    models: dict[str, list[str]] = Field(min_length=1)
    keys: list[KeyEntry] | None = None
    database_url: str = "sqlite:///moerun-usage.db"
    redis_url: str | None = None
    # Or read either URL (it holds a password) from an environment variable, e.g. a Secret's.
    database_url_env: str | None = None
    redis_url_env: str | None = None
    redis_prefix: str = "moerun:"
    key_poll_s: float = Field(default=0.5, gt=0)  # how often replicas look for key changes
    server: ServerEntry = ServerEntry()
    timeouts: TimeoutsEntry = TimeoutsEntry()
    retries: RetriesEntry = RetriesEntry()
    circuit_breaker: BreakerEntry = BreakerEntry()
    health: HealthEntry = HealthEntry()
    routing: RoutingEntry = RoutingEntry()
    overflow: OverflowEntry = OverflowEntry()
    ledger: LedgerEntry = LedgerEntry()
    tracing: TracingEntry = TracingEntry()

    @field_validator("database_url")
    @classmethod
    def _ledger_dialect(cls, value: str) -> str:
        # The ledger runs on SQLite or PostgreSQL (store/usage.py); others fail at start-up.
        if not re.match(r"^(sqlite|postgresql)(\+[a-z0-9]+)?://", value):
            raise ValueError(
                "the ledger runs on SQLite or PostgreSQL: use sqlite:///PATH or "
                "postgresql://USER@HOST/DB"
            )
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^(redis|rediss|unix)://", value):
            raise ValueError("use redis://HOST:PORT/DB, rediss:// or unix://")
        return value
