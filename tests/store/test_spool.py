"""The spool and the durable ledger: rows acknowledged only once durable, replayed exactly once."""

from __future__ import annotations

import asyncio
import fcntl
import os
import threading
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from moerun.core.traffic.metering import UsageRecord
from moerun.errors import SpoolError, StoreError
from moerun.store.durable import OK, SPOOLING, UNWRITABLE, DurableLedger
from moerun.store.spool import Spool, read_rows
from moerun.store.tables import usage_records
from moerun.store.usage import open_ledger
from moerun.store.writer import BatchWriter, Row, row
from tests.store.test_usage_ledger import T0, rec


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'usage.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


def _stored(database_url: str) -> list[UsageRecord]:
    engine = create_engine(database_url)
    with engine.connect() as conn:
        rows = conn.execute(select(usage_records).order_by(usage_records.c.request_id)).all()
    engine.dispose()
    return [
        UsageRecord(
            request_id=r.request_id,
            created_at_s=r.created_at_s,
            key_name=r.key_name,
            backend=r.backend,
            model=r.model,
            endpoint=r.endpoint,
            stream=r.stream,
            status=r.status,
            http_status=r.http_status,
            num_input_tokens=r.input_tokens,
            num_cached_tokens=r.cached_tokens,
            num_output_tokens=r.output_tokens,
            cost_usd=r.cost_usd,
            ttft_ms=r.ttft_ms,
            duration_ms=r.duration_ms,
        )
        for r in rows
    ]


def _distinct(i: int) -> UsageRecord:
    """A record whose every number differs, so a swapped column cannot pass."""
    return rec(
        i,
        stream=True,
        http_status=200 + i,
        num_input_tokens=1000 + i,
        num_cached_tokens=300 + i,
        num_output_tokens=50 + i,
        cost_usd=0.001 * (i + 1),
        ttft_ms=7.25 + i,
        duration_ms=912.5 + i,
    )


class Gate(BatchWriter):
    """A database that commits only while its gate is open (a hung or down server)."""

    def __init__(self, inner: BatchWriter) -> None:
        self.inner = inner
        self.open = threading.Event()
        self.down = False
        super().__init__("gate")

    def commit(self, rows: list[Row], replayed: list[Row]) -> set[object]:
        if self.down:
            raise ConnectionError("refused")
        self.open.wait()
        return self.inner.commit(rows, replayed)

    def outage(self, exc: Exception) -> bool:
        return isinstance(exc, ConnectionError)

    def spend_by_key(self, since_s: float) -> dict[str, float]:
        return self.inner.spend_by_key(since_s)  # type: ignore[attr-defined, no-any-return]

    def close(self) -> None:
        self.open.set()
        super().close()
        self.inner.close()


def _gated(database_url: str, spool_dir: Path, timeout_s: float = 0.2) -> DurableLedger:
    opened = open_ledger(database_url, spool_dir=spool_dir / "unused")
    opened.spool.close()
    inner = opened.database
    assert isinstance(inner, BatchWriter)
    return DurableLedger(Gate(inner), Spool(spool_dir), commit_timeout_s=timeout_s)


async def _drained(ledger: DurableLedger) -> bool:
    """Drain until done (a replay that timed out is waited for first), at most ~5 s."""
    for _ in range(100):
        if await ledger.drain():
            return True
        await asyncio.sleep(0.05)
    return False


def test_every_column_round_trips(database_url: str, tmp_path: Path) -> None:
    records = [_distinct(i) for i in range(5)]
    ledger = open_ledger(database_url, spool_dir=tmp_path / "spool")

    async def go() -> None:
        await asyncio.gather(*(ledger.record(r) for r in records))

    try:
        asyncio.run(go())
        assert ledger.state == OK and ledger.spool_rows == 0
    finally:
        ledger.close()
    assert _stored(database_url) == records
    assert not (tmp_path / "spool").exists()  # an empty spool directory is removed


def test_slow_database_spools_then_replays_exactly_once(database_url: str, tmp_path: Path):
    ledger = _gated(database_url, tmp_path / "spool")
    gate = ledger.database
    assert isinstance(gate, Gate)
    records = [_distinct(i) for i in range(6)]

    async def go() -> None:
        ledger.replay_interval_s = 3600.0  # replays only when asked here
        ledger.start()
        # Hung: each waits out the commit timeout, then the spool has it.
        await asyncio.gather(*(ledger.record(r) for r in records[:3]))
        assert ledger.state == SPOOLING and ledger.spool_rows == 3
        # Spooling: no more waiting on the database.
        await asyncio.wait_for(ledger.record(records[3]), 0.15)
        assert await ledger.drain() is False  # still hung: nothing moves
        assert ledger.spool_rows == 4
        gate.open.set()  # the first three commits land late; the replay skips them
        assert await _drained(ledger)
        assert ledger.state == OK and ledger.spool_rows == 0
        await asyncio.gather(*(ledger.record(r) for r in records[4:]))
        assert ledger.spool_rows == 0 and ledger.num_replayed == 4
        await ledger.stop()

    try:
        asyncio.run(go())
    finally:
        ledger.close()
    assert _stored(database_url) == records
    assert list((tmp_path / "spool").glob("*.jsonl")) == []


def test_down_database_spools_at_once(database_url: str, tmp_path: Path) -> None:
    ledger = _gated(database_url, tmp_path / "spool", timeout_s=30.0)
    gate = ledger.database
    assert isinstance(gate, Gate)
    gate.down = True

    async def go() -> None:
        await asyncio.wait_for(ledger.record(_distinct(1)), 5.0)  # refused: no timeout wait
        assert ledger.state == SPOOLING
        assert ledger.spend_by_key(T0) == {"eu-app": pytest.approx(0.002)}
        gate.down = False
        gate.open.set()
        assert await _drained(ledger)

    try:
        asyncio.run(go())
    finally:
        ledger.close()
    assert _stored(database_url) == [_distinct(1)]


def test_a_row_is_acknowledged_only_after_the_spool_fsync(tmp_path: Path) -> None:
    class SlowSpool(Spool):
        def __init__(self, directory: Path) -> None:
            self.release = threading.Event()
            super().__init__(directory)

        def commit(self, rows: list[Row], replayed: list[Row]) -> set[object]:
            self.release.wait()
            return super().commit(rows, replayed)

    url = f"sqlite:///{tmp_path / 'u.db'}"
    ledger = _gated(url, tmp_path / "unused-spool")
    ledger.spool.close()
    spool = ledger.spool = SlowSpool(tmp_path / "spool")
    ledger.state = SPOOLING

    async def go() -> None:
        task = asyncio.ensure_future(ledger.record(_distinct(2)))
        await asyncio.sleep(0.3)
        assert not task.done()  # not durable yet: the client must not get its last byte
        spool.release.set()
        await task
        assert [r[0] for p in spool.directory.glob("*.jsonl") for r in read_rows(p)] == ["req_2"]

    try:
        asyncio.run(go())
    finally:
        ledger.close()


def test_a_spool_that_cannot_be_written_refuses(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    with pytest.raises(SpoolError, match="not writable"):
        Spool(blocker / "spool")

    class FullSpool(Spool):
        def commit(self, rows: list[Row], replayed: list[Row]) -> set[object]:
            raise OSError(28, "No space left on device")

    url = f"sqlite:///{tmp_path / 'u.db'}"
    ledger = _gated(url, tmp_path / "unused-spool")
    ledger.spool.close()
    ledger.spool = FullSpool(tmp_path / "spool")
    ledger.state = SPOOLING

    gate = ledger.database
    assert isinstance(gate, Gate)

    async def go() -> None:
        with pytest.raises(StoreError, match="No space left"):
            await ledger.record(_distinct(3))
        assert ledger.state == UNWRITABLE
        gate.open.set()  # the database answers again: it takes rows despite the spool
        await ledger.record(_distinct(4))
        assert ledger.state == OK

    try:
        asyncio.run(go())
    finally:
        ledger.close()
    assert _stored(url) == [_distinct(4)]


def test_files_held_by_another_writer_are_not_claimed(tmp_path: Path) -> None:
    a, b = Spool(tmp_path / "s"), Spool(tmp_path / "s")

    async def go() -> None:
        await a.submit([row(_distinct(1))])[0]
        await b.submit([row(_distinct(2))])[0]

    try:
        asyncio.run(go())
        assert a.claim() == []  # a's own file is current; b holds its file
        b.seal()
        claimed = a.claim()
        assert [read_rows(p)[0][0] for p, _ in claimed] == ["req_2"]
        for path, fd in claimed:
            a.remove(path, fd, 1)
        # A torn last line (a crash mid-write) is skipped; the rows before it are kept.
        a.seal()
        (path,) = (tmp_path / "s").glob("*.jsonl")
        with open(path, "ab") as f:
            f.write(b'["req_9", 1.0, "k"')
        assert [r[0] for r in read_rows(path)] == ["req_1"]
        fd = os.open(path, os.O_RDONLY)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # sealed: nobody holds it
        os.close(fd)
    finally:
        a.close()
        b.close()


def test_leftover_spool_is_replayed_at_start(database_url: str, tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")

    async def spool_two() -> None:
        await asyncio.gather(*spool.submit([row(_distinct(1)), row(_distinct(2))]))

    asyncio.run(spool_two())
    spool.close()  # as a crashed gateway leaves it
    ledger = open_ledger(database_url, spool_dir=tmp_path / "spool")
    assert ledger.state == SPOOLING and ledger.spool_rows == 2

    async def go() -> None:
        await ledger.record(_distinct(1))  # already spooled: the replay keeps one
        assert await ledger.drain() is True

    try:
        asyncio.run(go())
    finally:
        ledger.close()
    assert _stored(database_url) == [_distinct(1), _distinct(2)]
