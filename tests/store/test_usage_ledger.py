"""The usage ledger on SQLite and PostgreSQL: migrations, commits, reads, the usage command."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from moerun.cli import main
from moerun.core.traffic.metering import UsageRecord
from moerun.errors import StoreError
from moerun.store.migrate import upgrade
from moerun.store.pg import PgLedger
from moerun.store.report import spend_by_key_backend
from moerun.store.usage import SqliteLedger, open_ledger

T0 = 1_795_000_000.0


def rec(
    i: int, key: str = "eu-app", backend: str = "h200-a", cost: float = 0.01, **kw: object
) -> UsageRecord:
    fields: dict[str, object] = {
        "request_id": f"req_{i}",
        "created_at_s": T0 + i,
        "key_name": key,
        "backend": backend,
        "model": "glm-5.1",
        "endpoint": "chat/completions",
        "stream": bool(i % 2),
        "status": "ok",
        "http_status": 200,
        "num_input_tokens": 100,
        "num_cached_tokens": 40,
        "num_output_tokens": 10,
        "cost_usd": cost,
        "ttft_ms": 12.5,
        "duration_ms": 80.0,
    }
    fields.update(kw)
    return UsageRecord(**fields)  # type: ignore[arg-type]


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'usage.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


def _write(url: str, records: list[UsageRecord], sync: str = "normal") -> None:
    ledger = open_ledger(url, sync)

    async def go() -> None:
        await asyncio.gather(*(ledger.record(r) for r in records))

    try:
        asyncio.run(go())
    finally:
        ledger.close()


def test_migrations_are_idempotent_and_create_the_table(database_url: str) -> None:
    upgrade(database_url)
    upgrade(database_url)
    engine = create_engine(database_url)
    with engine.connect() as conn:
        insp = inspect(conn)
        assert insp.has_table("usage_records") and insp.has_table("alembic_version")
        columns = {c["name"] for c in insp.get_columns("usage_records")}
    engine.dispose()
    assert {"key_name", "backend", "cached_tokens", "cost_usd", "ttft_ms", "status"} <= columns


def test_records_are_committed_and_reported(database_url: str) -> None:
    records = [rec(i) for i in range(10)]
    records += [rec(100 + i, key="us-app", backend="nebius", cost=0.5) for i in range(3)]
    records.append(rec(200, key="us-app", backend="nebius", cost=0.0, status="error"))
    _write(database_url, records)
    rows = spend_by_key_backend(database_url)
    assert [(r.key_name, r.backend, r.num_requests) for r in rows] == [
        ("us-app", "nebius", 4),
        ("eu-app", "h200-a", 10),
    ]
    assert rows[0].cost_usd == pytest.approx(1.5) and rows[0].num_errors == 1
    assert rows[1].num_cached_tokens == 400
    since = spend_by_key_backend(database_url, since_s=T0 + 5, until_s=T0 + 50)
    assert [(r.key_name, r.num_requests) for r in since] == [("eu-app", 5)]


def test_spend_by_key_seeds_budgets(database_url: str) -> None:
    _write(database_url, [rec(i, cost=0.25) for i in range(4)])
    ledger = open_ledger(database_url)
    try:
        assert ledger.spend_by_key(T0) == {"eu-app": pytest.approx(1.0)}
        assert ledger.spend_by_key(T0 + 2) == {"eu-app": pytest.approx(0.5)}
    finally:
        ledger.close()


def test_writer_kinds(tmp_path: Path, pg_url: str) -> None:
    sqlite = f"sqlite:///{tmp_path / 'a.db'}"
    for url, sync, kind in (
        (sqlite, "normal", SqliteLedger),
        (sqlite, "full", SqliteLedger),
        (pg_url, "normal", PgLedger),
    ):
        ledger = open_ledger(url, sync)
        assert isinstance(ledger.database, kind)
        ledger.close()
    _write(sqlite, [rec(1)], sync="full")
    assert spend_by_key_backend(sqlite)[0].num_requests == 1


def test_duplicate_request_id_is_a_store_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'u.db'}"
    _write(url, [rec(1)])
    with pytest.raises(StoreError):
        _write(url, [rec(1)])


def test_usage_command(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    _write(database_url, [rec(i) for i in range(3)])
    assert main(["usage", "--database-url", database_url, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["num_requests"] == 3 and data["total_cost_usd"] == pytest.approx(0.03)
    assert data["rows"][0]["key_name"] == "eu-app"
    assert main(["usage", "--database-url", database_url]) == 0
    out = capsys.readouterr().out
    assert "eu-app" in out and "h200-a" in out and "0.030000" in out


def test_usage_command_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    assert main(["usage", "--database-url", empty]) == 2
    assert "no usage ledger" in capsys.readouterr().err
    assert main(["usage", "--database-url", empty, "--since", "yesterday"]) == 2
    assert "--since" in capsys.readouterr().err
