"""Live API keys in the database: insert, delete, read all, and the version to poll.

Only SHA-256 digests are stored. Every write bumps the version row in its own transaction,
so `version()` (one primary-key read) tells a replica when to reload.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import orjson
from sqlalchemy import Connection, Engine, RowMapping, create_engine, delete, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from moerun.errors import StoreError
from moerun.store.key_tables import api_key_version, api_keys
from moerun.store.migrate import redact


@dataclass(frozen=True, slots=True)
class KeyRow:
    """One stored key (its digest, never the key)."""

    key_sha256: str
    key_name: str
    key_alias: str | None
    models: tuple[str, ...] | None
    max_budget_usd: float | None
    budget_period: str
    rpm_limit: int | None
    tpm_limit: int | None
    metadata: dict[str, object]
    created_at_s: float


class DuplicateKey(StoreError):
    """A key with this digest or name exists already."""


class KeyTable:
    """The api_keys table of one database (migrated beforehand by `upgrade`)."""

    def __init__(self, database_url: str) -> None:
        self.where = redact(database_url)
        self._engine: Engine = create_engine(database_url, pool_pre_ping=True)

    def version(self) -> int:
        """The current key version (changes on every insert or delete)."""
        with self._guard(), self._engine.connect() as conn:
            v = conn.execute(select(api_key_version.c.version).where(api_key_version.c.id == 1))
            return int(v.scalar_one())

    def load(self) -> tuple[int, list[KeyRow]]:
        """The version and every key, read in one transaction."""
        with self._guard(), self._engine.begin() as conn:
            v = conn.execute(select(api_key_version.c.version).where(api_key_version.c.id == 1))
            rows = conn.execute(select(api_keys)).mappings().all()
            return int(v.scalar_one()), [_row(r) for r in rows]

    def insert(self, key: KeyRow) -> None:
        """Add a key; DuplicateKey if its digest or name is taken."""
        values = {
            "key_sha256": key.key_sha256,
            "key_name": key.key_name,
            "key_alias": key.key_alias,
            "models": None if key.models is None else orjson.dumps(list(key.models)).decode(),
            "max_budget": key.max_budget_usd,
            "budget_period": key.budget_period,
            "rpm_limit": key.rpm_limit,
            "tpm_limit": key.tpm_limit,
            "metadata": orjson.dumps(key.metadata).decode(),
            "created_at_s": key.created_at_s,
        }
        try:
            with self._guard(), self._engine.begin() as conn:
                conn.execute(api_keys.insert().values(**values))
                self._bump(conn)
        except IntegrityError as exc:
            raise DuplicateKey(f"a key named {key.key_name!r} exists already") from exc

    def delete(self, digests: list[str], names: list[str]) -> list[str]:
        """Delete keys by digest or name; the digests deleted."""
        cond = or_(api_keys.c.key_sha256.in_(digests), api_keys.c.key_name.in_(names))
        with self._guard(), self._engine.begin() as conn:
            gone = [r[0] for r in conn.execute(select(api_keys.c.key_sha256).where(cond))]
            if gone:
                conn.execute(delete(api_keys).where(api_keys.c.key_sha256.in_(gone)))
                self._bump(conn)
            return gone

    def close(self) -> None:
        """Release the connections."""
        self._engine.dispose()

    @staticmethod
    def _bump(conn: Connection) -> None:
        stmt = (
            update(api_key_version)
            .where(api_key_version.c.id == 1)
            .values(version=api_key_version.c.version + 1)
        )
        conn.execute(stmt)

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Database errors (other than duplicates) as one-line StoreErrors."""
        try:
            yield
        except IntegrityError:
            raise
        except SQLAlchemyError as exc:
            first = str(exc).splitlines()[0] if str(exc) else ""
            raise StoreError(f"key table {self.where}: {type(exc).__name__}: {first}") from exc


def _row(m: RowMapping) -> KeyRow:
    models = m["models"]
    meta = orjson.loads(m["metadata"])
    return KeyRow(
        key_sha256=m["key_sha256"],
        key_name=m["key_name"],
        key_alias=m["key_alias"],
        models=None if models is None else tuple(orjson.loads(models)),
        max_budget_usd=m["max_budget"],
        budget_period=m["budget_period"],
        rpm_limit=m["rpm_limit"],
        tpm_limit=m["tpm_limit"],
        metadata=meta if isinstance(meta, dict) else {},
        created_at_s=m["created_at_s"],
    )
