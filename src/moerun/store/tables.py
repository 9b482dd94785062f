"""The ledger's tables (SQLAlchemy Core); Alembic migrations in `migrations/` create them."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, Index, Integer, MetaData, String, Table

metadata = MetaData()

usage_records = Table(
    "usage_records",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(64), nullable=False, unique=True),
    Column("created_at_s", Float, nullable=False),  # UTC epoch seconds, when it finished
    Column("key_name", String(128), nullable=False),
    Column("backend", String(128), nullable=False),
    Column("model", String(256), nullable=False),
    Column("endpoint", String(64), nullable=False),
    Column("stream", Boolean, nullable=False),
    Column("status", String(32), nullable=False),
    Column("http_status", Integer, nullable=False),
    Column("input_tokens", Integer, nullable=False),
    Column("cached_tokens", Integer, nullable=False),
    Column("output_tokens", Integer, nullable=False),
    Column("cost_usd", Float, nullable=False),
    Column("ttft_ms", Float, nullable=True),
    Column("duration_ms", Float, nullable=False),
    Index("ix_usage_records_key_time", "key_name", "created_at_s"),
)

# Column order of the fast-path INSERT; matches UsageRecord field order.
RECORD_COLUMNS = tuple(c.name for c in usage_records.columns if c.name != "id")
