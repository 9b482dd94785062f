"""The ledger on PostgreSQL: psycopg on one connection, one statement per batch.

A batch is one `INSERT ... SELECT * FROM unnest(<one array per column>) ON CONFLICT
(request_id) DO NOTHING RETURNING request_id`: a single prepared statement whatever the batch
size, one round trip, its own transaction (autocommit). SQLAlchemy Core cost ~2.7 ms of
gateway CPU per request here (pool pre-ping, BEGIN and COMMIT as separate round trips).

Durability follows `ledger.sync`: "full" waits for PostgreSQL's WAL flush before a request's
last byte (synchronous_commit on); "normal" (the default, as SQLite's NORMAL) returns once
the row is committed in the server, which then survives a gateway crash; the server flushes
its WAL within 3 x wal_writer_delay (0.6 s by default), so a crash of PostgreSQL itself may
lose that much.
"""

from __future__ import annotations

import psycopg
from sqlalchemy import Boolean, Float, Integer, String
from sqlalchemy.engine import URL

from moerun.store.migrate import redact
from moerun.store.tables import RECORD_COLUMNS, usage_records
from moerun.store.writer import BatchWriter, Row


def _array_type(name: str) -> str:
    kind = usage_records.c[name].type
    for sa_type, pg in ((Boolean, "bool"), (Integer, "int8"), (Float, "float8"), (String, "text")):
        if isinstance(kind, sa_type):
            return pg + "[]"
    raise AssertionError(f"no array type for column {name}")


_INSERT = (
    f"INSERT INTO usage_records ({', '.join(RECORD_COLUMNS)}) SELECT * FROM unnest("
    + ", ".join(f"%s::{_array_type(c)}" for c in RECORD_COLUMNS)
    + ") ON CONFLICT (request_id) DO NOTHING RETURNING request_id"
)
_SPEND = (
    "SELECT key_name, SUM(cost_usd) FROM usage_records WHERE created_at_s >= %s GROUP BY key_name"
)


def conninfo(url: URL) -> str:
    """A libpq connection URI from a SQLAlchemy URL (driver suffix dropped)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class PgLedger(BatchWriter):
    """PostgreSQL through psycopg; reconnects after the server went away."""

    def __init__(self, url: URL, sync: str = "normal", connect_timeout_s: float = 2.0) -> None:
        self.conninfo = conninfo(url)
        self.sync = sync
        self.connect_timeout_s = connect_timeout_s
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        super().__init__(redact(url.render_as_string(hide_password=False)))

    def _connect(self) -> psycopg.Connection[tuple[object, ...]]:
        conn = psycopg.connect(
            self.conninfo, autocommit=True, connect_timeout=max(1, round(self.connect_timeout_s))
        )
        if self.sync != "full":
            conn.execute("SET synchronous_commit = off")
        return conn

    def commit(self, rows: list[Row], replayed: list[Row]) -> set[object]:
        """One statement for both kinds; the ids it inserted."""
        columns = [list(c) for c in zip(*(rows + replayed), strict=True)]
        conn = self._conn
        try:
            if conn is None:
                conn = self._conn = self._connect()
            cur = conn.execute(_INSERT, columns, prepare=True)
            return {r[0] for r in cur.fetchall()}
        except psycopg.Error:
            if conn is not None and (conn.broken or conn.closed):
                conn.close()
                self._conn = None
            raise

    def outage(self, exc: Exception) -> bool:
        """Connection failures and a server that went away."""
        return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)

    def spend_by_key(self, since_s: float) -> dict[str, float]:
        """Dollars spent per key since a moment (on a connection of its own)."""
        timeout = max(1, round(self.connect_timeout_s))
        with psycopg.connect(self.conninfo, connect_timeout=timeout) as conn:
            rows = conn.execute(_SPEND, (since_s,)).fetchall()
        return {str(k): float(v or 0.0) for k, v in rows}

    def close(self) -> None:
        """Finish queued writes, stop the thread, close the connection."""
        super().close()
        if self._conn is not None:
            self._conn.close()
