"""The ledger's spool: rows the database could not take in time, kept on local disk until it can.

Append-only JSON-lines files in one directory, fsync'd before a write returns (the promise a
database commit makes), written in batches by the same group-commit thread as the database.
Each process appends to a file of its own and holds an exclusive flock on it while writing;
`seal` closes it, and `claim` takes every file no writer holds, so several gateways may share
a directory and a crashed one's rows are replayed by whichever claims them next. A line cut
short by a crash is skipped: its request never got its last byte, which waits for the fsync.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from pathlib import Path

import orjson

from moerun.errors import SpoolError
from moerun.store.tables import RECORD_COLUMNS
from moerun.store.writer import BatchWriter, Row

_AT, _KEY, _COST = (RECORD_COLUMNS.index(c) for c in ("created_at_s", "key_name", "cost_usd"))


class Spool(BatchWriter):
    """Append-only row files under `directory`; `num_rows` counts what waits in them."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._path: Path | None = None
        self._tag = f"{os.getpid()}-{os.urandom(4).hex()}"
        self._seq = 0
        try:
            directory.mkdir(parents=True, exist_ok=True)
            probe = directory / f".probe-{self._tag}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise SpoolError(f"ledger spool {directory} is not writable: {exc.strerror}") from exc
        self.num_rows = sum(len(read_rows(p)) for p in self._files())
        super().__init__(f"spool {directory}")

    def _files(self) -> list[Path]:
        return sorted(self.directory.glob("*.jsonl"))

    def commit(self, rows: list[Row], replayed: list[Row]) -> set[object]:
        """Append the rows and fsync (on the writer thread)."""
        data = b"".join(orjson.dumps(list(r)) + b"\n" for r in rows + replayed)
        with self._lock:
            if self._fd is None:
                self._open()
            assert self._fd is not None
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
            os.fsync(self._fd)
            self.num_rows += len(rows) + len(replayed)
        return {r[0] for r in rows + replayed}

    def outage(self, exc: Exception) -> bool:
        """A spool that cannot write fails every row alike."""
        return True

    def _error(self, exc: Exception) -> SpoolError:
        return SpoolError(f"ledger spool {self.directory}: {type(exc).__name__}: {exc}")

    def _open(self) -> None:
        self._seq += 1
        self.directory.mkdir(parents=True, exist_ok=True)  # a sharer may have removed it
        path = self.directory / f"{self._tag}-{self._seq:06d}.jsonl"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the new file's name is durable too
        finally:
            os.close(dir_fd)
        self._fd, self._path = fd, path

    def seal(self) -> None:
        """Close the file being written: it may now be claimed; the next row starts a new one."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = self._path = None

    def claim(self) -> list[tuple[Path, int]]:
        """Every file no writer holds, each locked for the caller (release or remove it)."""
        claimed = []
        with self._lock:
            current = self._path
        for path in self._files():
            if path == current:
                continue
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue  # another gateway replayed it meanwhile
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            if not path.exists():
                os.close(fd)
                continue
            claimed.append((path, fd))
        return claimed

    def remove(self, path: Path, fd: int, num_rows: int) -> None:
        """Delete a claimed file whose rows are all in the database."""
        path.unlink(missing_ok=True)
        os.close(fd)
        with self._lock:
            self.num_rows = max(0, self.num_rows - num_rows)

    def spend_by_key(self, since_s: float) -> dict[str, float]:
        """Dollars per key in the spooled rows created since a moment."""
        spend: dict[str, float] = {}
        for path in self._files():
            for r in read_rows(path):
                if float(r[_AT]) >= since_s:  # type: ignore[arg-type]
                    key = str(r[_KEY])
                    spend[key] = spend.get(key, 0.0) + float(r[_COST])  # type: ignore[arg-type]
        return spend

    def close(self) -> None:
        """Finish queued writes, stop the thread, close the file; an empty directory goes."""
        super().close()
        self.seal()
        with contextlib.suppress(OSError):
            self.directory.rmdir()


def release(fd: int) -> None:
    """Give back a claimed file without removing it."""
    with contextlib.suppress(OSError):
        os.close(fd)


def read_rows(path: Path) -> list[Row]:
    """The complete rows of a spool file (a torn last line is skipped)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    rows: list[Row] = []
    for line in data.split(b"\n"):
        if not line:
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(value, list):
            rows.append(tuple(value))
    return rows
