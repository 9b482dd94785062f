"""The tables of live API keys: one row per key (its SHA-256, never the key) and a version.

Every change to `api_keys` bumps `api_key_version` in the same transaction, so a replica
notices a new or revoked key by reading one integer.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, Integer, String, Table, Text

from moerun.store.tables import metadata

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_sha256", String(64), primary_key=True),  # hex digest of the key
    Column("key_name", String(128), nullable=False, unique=True),  # the ledger's key_name
    Column("key_alias", String(128), nullable=True),
    Column("models", Text, nullable=True),  # JSON list; NULL: every model
    Column("max_budget", Float, nullable=True),  # dollars per budget period
    Column("budget_period", String(16), nullable=False),  # day | week | month
    Column("rpm_limit", Integer, nullable=True),
    Column("tpm_limit", Integer, nullable=True),
    Column("metadata", Text, nullable=False),  # JSON object (its "policy" is the key's policy)
    Column("created_at_s", Float, nullable=False),
)

api_key_version = Table(
    "api_key_version",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", Integer, nullable=False),
)
