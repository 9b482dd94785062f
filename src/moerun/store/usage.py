"""The usage ledger: one committed row per finished request, before its last byte is sent.

`Ledger.record` is awaited until the row is committed. A writer thread takes the queued rows,
commits them in one transaction (group commit: under load one commit serves many requests)
and wakes the waiting requests once per batch, so the event loop never blocks on the disk.
Why a thread: committing inline on the loop measured ~50 us per row but stalled the loop for
4-44 ms on the fsync SQLite does when its WAL restarts, which cut throughput at 8 concurrent
requests by up to 5x.

- SQLite (the default): raw sqlite3 in WAL mode with synchronous=NORMAL, which survives a
  crash of the gateway process (the row is in the WAL file) though not a power cut; WAL
  checkpoints run on a second thread. `sync: full` fsyncs every commit.
- Any other database (PostgreSQL): SQLAlchemy Core on the writer thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from typing import Protocol

from sqlalchemy import create_engine, func, select
from sqlalchemy.engine import make_url

from moerun.core.traffic.metering import UsageRecord
from moerun.errors import StoreError
from moerun.store.migrate import redact, upgrade
from moerun.store.tables import RECORD_COLUMNS, usage_records

_INSERT = (
    f"INSERT INTO usage_records ({', '.join(RECORD_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(RECORD_COLUMNS))})"
)
_MAX_BATCH = 512


class Ledger(Protocol):
    """Where usage records go. `record` returns once the row is committed."""

    async def record(self, rec: UsageRecord) -> None:
        """Commit one record."""

    def spend_by_key(self, since_s: float) -> dict[str, float]:
        """Dollars spent per key since a moment (UTC epoch seconds), for budgets at start."""

    def close(self) -> None:
        """Flush and release the database."""


def row(rec: UsageRecord) -> tuple[object, ...]:
    """A record as the ledger row (column order of RECORD_COLUMNS)."""
    return (
        rec.request_id,
        rec.created_at_s,
        rec.key_name,
        rec.backend,
        rec.model,
        rec.endpoint,
        rec.stream,
        rec.status,
        rec.http_status,
        rec.num_input_tokens,
        rec.num_cached_tokens,
        rec.num_output_tokens,
        rec.cost_usd,
        rec.ttft_ms,
        rec.duration_ms,
    )


def open_ledger(database_url: str, sync: str = "normal") -> Ledger:
    """Migrate the database to the newest schema and open the right writer for it."""
    upgrade(database_url)
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return SqliteLedger(url.database, sync)
    return SqlAlchemyLedger(database_url)


class _Writer:
    """A thread that commits queued rows in batches; subclasses say how to commit."""

    def __init__(self, name: str) -> None:
        self.name = name
        Item = tuple[tuple[object, ...], asyncio.Future[None]] | None
        self._queue: queue.SimpleQueue[Item] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="moerun-ledger", daemon=True)
        self._thread.start()

    async def record(self, rec: UsageRecord) -> None:
        """Queue the row and wait until its batch is committed."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put((row(rec), fut))
        await fut

    def _commit(self, rows: list[tuple[object, ...]]) -> None:
        """Insert the rows in one transaction (raises on failure, having rolled back)."""
        raise NotImplementedError

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < _MAX_BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)
                    break
                batch.append(item)
            errors: list[Exception | None] = [None] * len(batch)
            try:
                self._commit([r for r, _ in batch])
            except Exception:
                # Find the rows at fault, so one bad row does not fail its neighbours.
                for i, (r, _) in enumerate(batch):
                    try:
                        self._commit([r])
                    except Exception as exc:
                        errors[i] = StoreError(f"ledger {self.name}: {type(exc).__name__}: {exc}")
            loop = batch[0][1].get_loop()
            loop.call_soon_threadsafe(_settle, [f for _, f in batch], errors)

    def close(self) -> None:
        """Finish queued writes and stop the thread."""
        self._queue.put(None)
        self._thread.join(timeout=10)


class SqliteLedger(_Writer):
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

    def _commit(self, rows: list[tuple[object, ...]]) -> None:
        conn = self._conn
        conn.execute("BEGIN")
        try:
            conn.executemany(_INSERT, rows)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

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


class SqlAlchemyLedger(_Writer):
    """Any SQLAlchemy database (PostgreSQL by URL) through SQLAlchemy Core."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self._engine = create_engine(database_url, pool_pre_ping=True)
        super().__init__(redact(database_url))

    def _commit(self, rows: list[tuple[object, ...]]) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                usage_records.insert(), [dict(zip(RECORD_COLUMNS, r, strict=True)) for r in rows]
            )

    def spend_by_key(self, since_s: float) -> dict[str, float]:
        """Dollars spent per key since a moment."""
        q = (
            select(usage_records.c.key_name, func.sum(usage_records.c.cost_usd))
            .where(usage_records.c.created_at_s >= since_s)
            .group_by(usage_records.c.key_name)
        )
        with self._engine.connect() as conn:
            return {k: float(v or 0.0) for k, v in conn.execute(q).all()}

    def close(self) -> None:
        """Finish queued writes, stop the thread, dispose of the engine."""
        super().close()
        self._engine.dispose()


def _settle(futures: list[asyncio.Future[None]], errors: list[Exception | None]) -> None:
    for f, error in zip(futures, errors, strict=True):
        if f.done():
            continue
        if error is None:
            f.set_result(None)
        else:
            f.set_exception(error)
