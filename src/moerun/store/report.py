"""Reading the usage ledger back: spend by key and backend over a time range."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import case, create_engine, func, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from moerun.errors import StoreError
from moerun.store.migrate import redact
from moerun.store.tables import usage_records


@dataclass(frozen=True, slots=True)
class SpendRow:
    """Totals for one (key, backend) pair."""

    key_name: str
    backend: str
    num_requests: int
    num_errors: int
    num_input_tokens: int
    num_cached_tokens: int
    num_output_tokens: int
    cost_usd: float


def spend_by_key_backend(
    database_url: str, since_s: float | None = None, until_s: float | None = None
) -> list[SpendRow]:
    """Spend per key and backend, most expensive first."""
    u = usage_records.c
    q = (
        select(
            u.key_name,
            u.backend,
            func.count(),
            func.sum(case((u.status != "ok", 1), else_=0)),
            func.sum(u.input_tokens),
            func.sum(u.cached_tokens),
            func.sum(u.output_tokens),
            func.sum(u.cost_usd),
        )
        .group_by(u.key_name, u.backend)
        .order_by(func.sum(u.cost_usd).desc(), u.key_name, u.backend)
    )
    if since_s is not None:
        q = q.where(u.created_at_s >= since_s)
    if until_s is not None:
        q = q.where(u.created_at_s < until_s)
    _check_sqlite_exists(database_url)
    try:
        engine = create_engine(database_url)
        try:
            with engine.connect() as conn:
                if not inspect(conn).has_table("usage_records"):
                    raise StoreError(
                        f"{redact(database_url)} has no usage ledger (start `moerun gateway` on it)"
                    )
                rows = conn.execute(q).all()
        finally:
            engine.dispose()
    except SQLAlchemyError as exc:
        raise StoreError(f"ledger {redact(database_url)}: {type(exc).__name__}") from exc
    return [
        SpendRow(
            key_name=r[0],
            backend=r[1],
            num_requests=int(r[2]),
            num_errors=int(r[3] or 0),
            num_input_tokens=int(r[4] or 0),
            num_cached_tokens=int(r[5] or 0),
            num_output_tokens=int(r[6] or 0),
            cost_usd=float(r[7] or 0.0),
        )
        for r in rows
    ]


def _check_sqlite_exists(database_url: str) -> None:
    """StoreError for a SQLite file that is not there: connecting would create an empty one."""
    try:
        url = make_url(database_url)
    except Exception:
        raise StoreError(f"{redact(database_url)} is not a database URL") from None
    if not url.drivername.startswith("sqlite") or url.database in (None, "", ":memory:"):
        return
    if not Path(url.database).is_file():
        raise StoreError(
            f"no usage ledger at {url.database} (start `moerun gateway` with database_url "
            f"{redact(database_url)} first, or check the path)"
        )
