"""Ledger replay and spend semantics on real SQLite files and spool directories: rows the
database rejects are kept aside, big spool files go in whole, the replay task runs by itself,
spend adds the spool to the database, and failures say what failed."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sqlite3
import time
from pathlib import Path

import orjson
import pytest

from moerun.errors import LedgerOutage, StoreError
from moerun.store.durable import OK, SPOOLING
from moerun.store.migrate import upgrade
from moerun.store.spool import Spool, read_rows
from moerun.store.usage import SqliteLedger, default_spool_dir, open_ledger
from moerun.store.writer import BatchWriter, Row, row
from tests.store.test_spool import Gate, _distinct, _drained, _gated, _stored
from tests.store.test_usage_ledger import T0, rec


def _spool_rows(directory: Path, rows: list[Row]) -> None:
    """Leave rows in a spool directory, as a gateway that crashed leaves them."""
    spool = Spool(directory)

    async def go() -> None:
        await asyncio.gather(*spool.submit(rows))

    asyncio.run(go())
    spool.close()


def test_a_spooled_row_the_database_rejects_is_kept_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'u.db'}"
    bad = (*row(_distinct(2))[:2], None, *row(_distinct(2))[3:])  # key_name NULL: NOT NULL
    _spool_rows(tmp_path / "spool", [row(_distinct(1)), bad, row(_distinct(3))])
    ledger = open_ledger(url, spool_dir=tmp_path / "spool")
    assert ledger.state == SPOOLING and ledger.spool_rows == 3

    async def go() -> None:
        assert await ledger.drain() is True  # the good rows go in; the bad one cannot, ever

    with caplog.at_level(logging.ERROR, logger="moerun.ledger"):
        try:
            asyncio.run(go())
        finally:
            ledger.close()
    assert [r.request_id for r in _stored(url)] == ["req_1", "req_3"]
    rejected = (tmp_path / "spool" / "rejected.jsonl.txt").read_bytes().splitlines()
    assert [orjson.loads(line) for line in rejected] == [list(bad)]
    (message,) = [r.getMessage() for r in caplog.records if "rejected" in r.getMessage()]
    assert message.startswith("usage ledger: spooled row req_2 rejected: ledger ")
    assert "IntegrityError" in message


def test_replaying_a_row_already_committed_is_not_a_rejection(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'u.db'}"
    _spool_rows(tmp_path / "spool", [row(_distinct(1))])
    ledger = open_ledger(url, spool_dir=tmp_path / "spool")

    async def go() -> None:
        ledger.state = OK
        await ledger.record(_distinct(1))  # committed, and still in the spool
        assert await ledger.drain() is True

    try:
        asyncio.run(go())
    finally:
        ledger.close()
    assert _stored(url) == [_distinct(1)]
    assert not (tmp_path / "spool" / "rejected.jsonl.txt").exists()


def test_a_spool_file_longer_than_a_batch_is_replayed_whole(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'u.db'}"
    # 1,100 rows in one file (MAX_BATCH is 512: three batches), 2 in another.
    _spool_rows(tmp_path / "spool", [row(rec(i)) for i in range(1100)])
    _spool_rows(tmp_path / "spool", [row(rec(i)) for i in range(2000, 2002)])
    ledger = open_ledger(url, spool_dir=tmp_path / "spool")

    async def go() -> None:
        assert await _drained(ledger)

    try:
        asyncio.run(go())
        assert ledger.num_replayed == 1102 and ledger.spool_rows == 0
    finally:
        ledger.close()
    ids = {r.request_id for r in _stored(url)}
    assert ids == {f"req_{i}" for i in [*range(1100), 2000, 2001]}


def test_the_replay_task_brings_the_ledger_back_by_itself(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'u.db'}"
    ledger = _gated(url, tmp_path / "spool", timeout_s=30.0)
    gate = ledger.database
    assert isinstance(gate, Gate)
    gate.down = True
    spool_dir = tmp_path / "spool"

    async def go() -> None:
        ledger.replay_interval_s = 0.05
        ledger.start()
        await ledger.record(_distinct(1))  # refused: spooled
        assert ledger.state == SPOOLING and ledger.spool_rows == 1
        gate.down = False
        gate.open.set()
        for _ in range(200):  # nobody calls drain(): the task does
            if ledger.state == OK and ledger.spool_rows == 0:
                break
            await asyncio.sleep(0.05)
        assert ledger.state == OK and ledger.spool_rows == 0
        # Stopped, it replays no more.
        await ledger.stop()
        gate.down = True
        await ledger.record(_distinct(2))
        gate.down = False
        await asyncio.sleep(0.3)
        assert ledger.spool_rows == 1 and ledger.state == SPOOLING

    with caplog.at_level(logging.WARNING, logger="moerun.ledger"):
        try:
            asyncio.run(go())
        finally:
            ledger.close()
    assert _stored(url) == [_distinct(1)]
    messages = [r.getMessage() for r in caplog.records]
    assert (
        f"usage ledger: ledger gate: ConnectionError: refused; spooling rows to {spool_dir}"
        in messages
    )
    assert "usage ledger: the database is back; replaying the spool" in messages


def test_spend_adds_spooled_rows_to_committed_ones_and_counts_free_keys(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'u.db'}"
    ledger = _gated(url, tmp_path / "spool", timeout_s=30.0)
    gate = ledger.database
    assert isinstance(gate, Gate)

    async def go() -> None:
        gate.open.set()
        await ledger.record(rec(1, cost=0.25))
        await ledger.record(rec(2, key="free", cost=0.0))
        gate.down = True
        await ledger.record(rec(3, cost=0.5))  # spooled
        await ledger.record(rec(4, cost=1.0))  # spooled

    try:
        asyncio.run(go())
        assert ledger.spool_rows == 2 and ledger.num_spooled == 2
        # A free key spends $0, not $1; eu-app: $0.25 committed + $1.50 spooled.
        assert ledger.spend_by_key(T0) == {"eu-app": pytest.approx(1.75), "free": 0.0}
        # A row created exactly at the start of the window counts.
        assert ledger.spend_by_key(T0 + 3) == {"eu-app": pytest.approx(1.5)}
        assert ledger.spool.spend_by_key(T0 + 4) == {"eu-app": pytest.approx(1.0)}
    finally:
        ledger.close()


def test_batch_writer_failures_name_the_ledger_and_the_error(tmp_path: Path) -> None:
    class Broken(BatchWriter):
        def commit(self, rows: list[Row], replayed: list[Row]) -> set[object]:
            raise ValueError("bad row")

    writer = Broken("broken")

    async def go() -> None:
        with pytest.raises(StoreError) as err:
            await writer.record(_distinct(1))
        # Not the database's outage (the default): one row's fault, a plain StoreError.
        assert not isinstance(err.value, LedgerOutage)
        assert str(err.value) == "ledger broken: ValueError: bad row"

    try:
        asyncio.run(go())
    finally:
        writer.close()
    # A real writer's record() returns once the row is committed.
    ledger = open_ledger(f"sqlite:///{tmp_path / 'w.db'}", spool_dir=tmp_path / "s")
    db = ledger.database
    assert isinstance(db, SqliteLedger)

    async def direct() -> None:
        await db.record(rec(7, cost=0.125))

    try:
        asyncio.run(direct())
        assert db.spend_by_key(T0) == {"eu-app": 0.125}
    finally:
        ledger.close()


def test_a_full_spool_says_which_error(tmp_path: Path) -> None:
    class FullSpool(Spool):
        def commit(self, rows: list[Row], replayed: list[Row]) -> set[object]:
            raise OSError(28, "No space left on device")

    spool = FullSpool(tmp_path / "spool")

    async def go() -> None:
        futs = spool.submit([row(_distinct(1)), row(_distinct(2))])
        for fut in futs:
            with pytest.raises(StoreError) as err:
                await fut
            assert str(err.value) == (
                f"ledger spool {tmp_path / 'spool'}: OSError: [Errno 28] No space left on device"
            )

    try:
        asyncio.run(go())
    finally:
        spool.close()
    assert read_rows(tmp_path / "nothing.jsonl") == []


def test_spool_directory_beside_sqlite_or_one_per_server_url(tmp_path: Path) -> None:
    assert default_spool_dir(f"sqlite:///{tmp_path}/u.db") == Path(f"{tmp_path}/u.db.spool")
    url = "postgresql://moerun:secret@127.0.0.1:5432/usage"
    root = Path.home() / ".local" / "state" / "moerun" / "spool"
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    assert default_spool_dir(url) == root / digest
    # Another password is another URL: its rows never mix with these.
    assert default_spool_dir(url.replace("secret", "other")).parent == root
    assert default_spool_dir(url.replace("secret", "other")) != root / digest


def test_open_ledger_settings_reach_the_writer(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'u.db'}"
    default = open_ledger(url, spool_dir=tmp_path / "s1")
    full = open_ledger(url, "full", spool_dir=tmp_path / "s2", commit_timeout_s=0.5)
    try:
        assert default.commit_timeout_s == 2.0 and full.commit_timeout_s == 0.5
        db_default, db_full = default.database, full.database
        assert isinstance(db_default, SqliteLedger) and isinstance(db_full, SqliteLedger)
        assert db_default.sync == "normal" and db_full.sync == "full"
        # SQLite's synchronous: 1 NORMAL, 2 FULL (fsync at every commit)
        for db, level in ((db_default, 1), (db_full, 2)):
            conn = db._connect()
            assert conn.execute("PRAGMA synchronous").fetchone()[0] == level
            conn.close()
    finally:
        default.close()
        full.close()
    # WAL mode is kept in the file: any later reader sees it.
    plain = sqlite3.connect(tmp_path / "u.db")
    assert plain.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    plain.close()
    # An in-memory database would lose every row at exit (the URL as SQLAlchemy writes it).
    for bad, shown in (
        ("sqlite://", "sqlite://"),
        ("sqlite:///:memory:", "sqlite:///%3Amemory%3A"),
    ):
        with pytest.raises(StoreError) as err:
            open_ledger(bad)
        assert str(err.value) == f"ledger database {shown}: use a SQLite file or PostgreSQL"


def test_wal_checkpoints_run_on_their_own_thread(tmp_path: Path) -> None:
    # Automatic checkpoints are off (they would fsync on the commit path); the checkpoint
    # thread copies the WAL into the database file instead.
    path = tmp_path / "u.db"
    upgrade(f"sqlite:///{path}")
    ledger = SqliteLedger(str(path), checkpoint_interval_s=0.05)

    async def go() -> None:
        await asyncio.gather(*(ledger.record(rec(i)) for i in range(300)))

    try:
        before = path.stat().st_size
        asyncio.run(go())
        for _ in range(100):
            if path.stat().st_size > before:
                break
            time.sleep(0.02)
        assert path.stat().st_size > before
    finally:
        ledger.close()


def test_close_commits_what_was_queued_and_one_batch_catches_its_own_duplicate(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'u.db'}"
    upgrade(url)
    writer = SqliteLedger(str(tmp_path / "u.db"))
    rows = [row(_distinct(i)) for i in range(50)]

    async def go() -> None:
        futs = writer.submit(rows)
        writer.close()  # queued rows are committed before the thread stops
        await asyncio.gather(*futs)

    asyncio.run(go())
    assert [r.request_id for r in _stored(url)] == sorted(f"req_{i}" for i in range(50))
    # The same request id twice in one batch: the first is the row, the second an error.
    again = SqliteLedger(str(tmp_path / "u.db"))

    async def twice() -> list[BaseException | None]:
        futs = again.submit([row(_distinct(60)), row(_distinct(60))])
        return await asyncio.gather(*futs, return_exceptions=True)

    try:
        first, second = asyncio.run(twice())
    finally:
        again.close()
    assert first is None
    assert isinstance(second, StoreError)
    assert str(second) == f"ledger {tmp_path / 'u.db'}: duplicate req_60"


def test_spooled_rows_keep_spaces_and_count_replays(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s")
    spaced = row(rec(1, key="team a", backend="h200 pool"))

    async def go() -> None:
        await spool.submit([spaced])[0]
        await spool.submit([row(rec(2))], replayed=True)[0]

    try:
        asyncio.run(go())
        assert spool.num_rows == 2
        spool.seal()
        (path,) = (tmp_path / "s").glob("*.jsonl")
        assert read_rows(path) == [spaced, row(rec(2))]
    finally:
        spool.close()


def test_a_replay_refused_by_a_down_database_keeps_the_spool(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'u.db'}"
    ledger = _gated(url, tmp_path / "spool", timeout_s=30.0)
    gate = ledger.database
    assert isinstance(gate, Gate)
    gate.down = True

    async def go() -> None:
        await ledger.record(_distinct(1))
        await ledger.record(_distinct(2))
        assert await ledger.drain() is False  # refused: nothing leaves the spool
        assert ledger.spool_rows == 2 and ledger.num_replayed == 0
        gate.down = False
        gate.open.set()
        assert await _drained(ledger)

    try:
        asyncio.run(go())
    finally:
        ledger.close()
    assert _stored(url) == [_distinct(1), _distinct(2)]
