"""The usage ledger: one durable row per finished request, before its last byte is sent.

`open_ledger` migrates the database and returns a `DurableLedger`: the database's group-commit
writer (store/writer.py) with a local spool behind it for when the database is down or slow.

- SQLite (the default): raw sqlite3 in WAL mode with synchronous=NORMAL, which survives a
  crash of the gateway process (the row is in the WAL file) though not a power cut; WAL
  checkpoints run on a second thread. `sync: full` fsyncs every commit.
- PostgreSQL: psycopg, one statement per batch (store/pg.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
import threading
from pathlib import Path

from sqlalchemy.engine import make_url

from moerun.errors import StoreError
from moerun.store.durable import DurableLedger
from moerun.store.migrate import redact, upgrade
from moerun.store.pg import PgLedger
from moerun.store.spool import Spool
from moerun.store.tables import RECORD_COLUMNS
from moerun.store.writer import BatchWriter, Row

_INSERT = (
    f"INSERT INTO usage_records ({', '.join(RECORD_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(RECORD_COLUMNS))}) ON CONFLICT (request_id) DO NOTHING"
)


def default_spool_dir(database_url: str) -> Path:
    """Beside a SQLite file; for a server, one directory per database URL under
    ~/.local/state/moerun/spool (so two gateways on different databases never mix rows)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database:
        return Path(url.database + ".spool")
    digest = hashlib.sha256(url.render_as_string(hide_password=False).encode()).hexdigest()
    return Path.home() / ".local" / "state" / "moerun" / "spool" / digest[:16]


def open_ledger(
    database_url: str,
    sync: str = "normal",
    spool_dir: str | Path | None = None,
    commit_timeout_s: float = 2.0,
) -> DurableLedger:
    """Migrate the database to the newest schema and open its writer with a spool behind it."""
    upgrade(database_url)
    url = make_url(database_url)
    backend = url.get_backend_name()
    database: SqliteLedger | PgLedger
    if backend == "sqlite" and url.database not in (None, "", ":memory:"):
        database = SqliteLedger(url.database, sync)
    elif backend == "postgresql":
        database = PgLedger(url, sync, connect_timeout_s=commit_timeout_s)
    else:
        raise StoreError(f"ledger database {redact(database_url)}: use a SQLite file or PostgreSQL")
    try:
        spool = Spool(Path(spool_dir) if spool_dir else default_spool_dir(database_url))
    except StoreError:
        database.close()
        raise
    return DurableLedger(database, spool, commit_timeout_s)


class SqliteLedger(BatchWriter):
    """SQLite through the sqlite3 module; WAL checkpoints on their own thread."""

    def __init__(self, path: str, sync: str = "normal", checkpoint_interval_s: float = 1.0):
        self.path = path
        self.sync = sync
        self._conn = self._connect()
        self._conn.execute("PRAGMA wal_autocheckpoint=0")
        self._stop = threading.Event()
        self._checkpointer = threading.Thread(
            target=self._checkpoint, args=(checkpoint_interval_s,), daemon=True
        )
        self._checkpointer.start()
        super().__init__(path)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(
            "PRAGMA synchronous=FULL" if self.sync == "full" else "PRAGMA synchronous=NORMAL"
        )
        conn.execute("PRAGMA busy_timeout=5000")
        return conn

    def commit(self, rows: list[Row], replayed: list[Row]) -> set[object]:
        """Both kinds in one transaction; the ids it inserted."""
        conn = self._conn
        inserted: set[object] = set()
        conn.execute("BEGIN")
        try:
            for r in rows + replayed:
                if conn.execute(_INSERT, r).rowcount:
                    inserted.add(r[0])
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return inserted

    def outage(self, exc: Exception) -> bool:
        """The file is locked, unreadable or its disk failed."""
        return isinstance(exc, sqlite3.OperationalError)

    def spend_by_key(self, since_s: float) -> dict[str, float]:
        """Dollars spent per key since a moment."""
        conn = self._connect()
        try:
            cur = conn.execute(
                "SELECT key_name, SUM(cost_usd) FROM usage_records WHERE created_at_s >= ? "
                "GROUP BY key_name",
                (since_s,),
            )
            return {k: float(v or 0.0) for k, v in cur.fetchall()}
        finally:
            conn.close()

    def _checkpoint(self, interval_s: float) -> None:
        conn = self._connect()
        while not self._stop.wait(interval_s):
            with contextlib.suppress(sqlite3.Error):  # busy: the next round will do it
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        conn.close()

    def close(self) -> None:
        """Finish queued writes, stop both threads, close the connection."""
        super().close()
        self._stop.set()
        self._checkpointer.join(timeout=5)
        self._conn.close()
