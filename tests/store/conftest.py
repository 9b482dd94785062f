"""Fixtures for ledger tests: PostgreSQL (must be reachable; see scripts/ci_services.sh)."""

from __future__ import annotations

from tests.fixtures.services import pg_server, pg_url  # noqa: F401
