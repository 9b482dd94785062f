"""Usage that survives database faults: commit with a timeout, else spool, replay later.

`record` returns once the row is durable somewhere: committed in the database within
`commit_timeout_s`, or else fsync'd to the local spool. The first timeout or outage switches
the ledger to "spooling", where rows go straight to the spool (no request waits on a dead
database); a replay task moves spooled rows into the database, idempotently (by request id),
and switches back to "ok" once the database takes them. A row may thus be written twice (a
commit that landed after its timeout, a replay repeated after a crash); the database keeps
one. Only a spool that cannot be written fails `record`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

import orjson

from moerun.core.traffic.metering import UsageRecord
from moerun.errors import LedgerOutage, SpoolError, StoreError
from moerun.store.spool import Spool, read_rows, release
from moerun.store.writer import MAX_BATCH, row

log = logging.getLogger("moerun.ledger")
OK, SPOOLING, UNWRITABLE = "ok", "spooling", "unwritable"


class Database(Protocol):
    """What the durable ledger needs of a database writer (BatchWriter plus a spend query)."""

    def submit(
        self, rows: list[tuple[object, ...]], replayed: bool = False
    ) -> list[asyncio.Future[None]]:
        """Queue rows; each future settles when its row is committed."""

    def spend_by_key(self, since_s: float) -> dict[str, float]:
        """Dollars spent per key since a moment."""

    def close(self) -> None:
        """Finish queued writes and release the database."""


class DurableLedger:
    """A database writer with a spool behind it; `state` is ok, spooling or unwritable."""

    def __init__(
        self,
        database: Database,
        spool: Spool,
        commit_timeout_s: float = 2.0,
        replay_interval_s: float = 1.0,
    ) -> None:
        self.database = database
        self.spool = spool
        self.commit_timeout_s = commit_timeout_s
        self.replay_interval_s = replay_interval_s
        self.state = SPOOLING if spool.num_rows else OK
        self.num_spooled = 0  # rows this process sent to the spool
        self.num_replayed = 0  # spooled rows moved into the database
        self._replay: asyncio.Task[None] | None = None
        self._pending: asyncio.Future[list[BaseException | None]] | None = None

    @property
    def spool_rows(self) -> int:
        """Rows waiting in the spool."""
        return self.spool.num_rows

    def start(self) -> None:
        """Start the replay task (on the running loop)."""
        self._replay = asyncio.get_running_loop().create_task(self._replay_loop())

    async def record(self, rec: UsageRecord) -> None:
        """Commit the row, or spool it if the database is down or slow; SpoolError if neither."""
        r = row(rec)
        if self.state != SPOOLING:  # ok, or a failed spool: the database may take it
            fut = self.database.submit([r])[0]
            try:
                await asyncio.wait_for(asyncio.shield(fut), self.commit_timeout_s)
                if self.state == UNWRITABLE:
                    self.state = SPOOLING if self.spool.num_rows else OK
                return
            except TimeoutError:
                fut.add_done_callback(_consume)  # it may still land; the replay skips it then
                self._degrade(f"commit took over {self.commit_timeout_s:g} s")
            except LedgerOutage as exc:
                self._degrade(str(exc))
        try:
            await self.spool.submit([r])[0]
        except SpoolError:
            self.state = UNWRITABLE
            raise
        self.num_spooled += 1
        if self.state == UNWRITABLE:
            self.state = SPOOLING

    def _degrade(self, why: str) -> None:
        if self.state != SPOOLING:
            log.warning("usage ledger: %s; spooling rows to %s", why, self.spool.directory)
            self.state = SPOOLING

    async def _replay_loop(self) -> None:
        while True:
            await asyncio.sleep(self.replay_interval_s)
            if self.spool.num_rows or self.state != OK:
                try:
                    await self.drain()
                except OSError as exc:
                    log.error("usage ledger: replaying the spool failed: %s", exc)

    async def drain(self) -> bool:
        """Move spooled rows into the database; True once the spool is empty and the
        ledger is back to "ok" (new rows go to the database again)."""
        if self._pending is not None and not self._pending.done():
            return False  # the last replay still waits on a hung database
        self.spool.seal()
        claimed = await asyncio.to_thread(self.spool.claim)
        try:
            while claimed:
                path, fd = claimed[0]
                rows = await asyncio.to_thread(read_rows, path)
                for i in range(0, len(rows), MAX_BATCH):
                    if not await self._replay_batch(rows[i : i + MAX_BATCH]):
                        return False
                await asyncio.to_thread(self.spool.remove, path, fd, len(rows))
                self.num_replayed += len(rows)
                claimed.pop(0)
        finally:
            for _, fd in claimed:
                release(fd)
        if self.state != OK:
            # Rows spooled from here on go to the database; those spooled before are in the
            # file sealed by the next drain.
            log.warning("usage ledger: the database is back; replaying the spool")
            self.state = OK
            return await self.drain()
        return True

    async def _replay_batch(self, rows: list[tuple[object, ...]]) -> bool:
        pending = asyncio.gather(*self.database.submit(rows, replayed=True), return_exceptions=True)
        self._pending = pending
        try:
            results = await asyncio.wait_for(asyncio.shield(pending), self.commit_timeout_s)
        except TimeoutError:
            return False
        if any(isinstance(r, LedgerOutage) for r in results):
            return False
        for r, result in zip(rows, results, strict=True):
            if isinstance(result, StoreError):
                # Not the database's fault and never going in: keep it beside the spool.
                log.error("usage ledger: spooled row %s rejected: %s", r[0], result)
                with open(self.spool.directory / "rejected.jsonl.txt", "ab") as out:
                    out.write(orjson.dumps(list(r)) + b"\n")
        return True

    def spend_by_key(self, since_s: float) -> dict[str, float]:
        """Dollars per key since a moment: the database's rows plus the spooled ones."""
        spend = self.database.spend_by_key(since_s)
        for key, usd in self.spool.spend_by_key(since_s).items():
            spend[key] = spend.get(key, 0.0) + usd
        return spend

    async def stop(self) -> None:
        """Stop the replay task (spooled rows stay for the next start)."""
        if self._replay is not None:
            self._replay.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._replay
            self._replay = None

    def close(self) -> None:
        """Finish queued writes and release the database and the spool."""
        if self._replay is not None:
            self._replay.cancel()
        self.database.close()
        self.spool.close()


def _consume(fut: asyncio.Future[None]) -> None:
    if not fut.cancelled():
        fut.exception()
