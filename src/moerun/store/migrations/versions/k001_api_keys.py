"""api_keys and api_key_version: API keys managed live (stored as SHA-256 digests only).

Revision ID: k001
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "k001"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the key tables and the version row."""
    op.create_table(
        "api_keys",
        sa.Column("key_sha256", sa.String(64), primary_key=True),
        sa.Column("key_name", sa.String(128), nullable=False, unique=True),
        sa.Column("key_alias", sa.String(128), nullable=True),
        sa.Column("models", sa.Text, nullable=True),
        sa.Column("max_budget", sa.Float, nullable=True),
        sa.Column("budget_period", sa.String(16), nullable=False),
        sa.Column("rpm_limit", sa.Integer, nullable=True),
        sa.Column("tpm_limit", sa.Integer, nullable=True),
        sa.Column("metadata", sa.Text, nullable=False),
        sa.Column("created_at_s", sa.Float, nullable=False),
    )
    version = op.create_table(
        "api_key_version",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.bulk_insert(version, [{"id": 1, "version": 0}])


def downgrade() -> None:
    """Drop the key tables."""
    op.drop_table("api_key_version")
    op.drop_table("api_keys")
