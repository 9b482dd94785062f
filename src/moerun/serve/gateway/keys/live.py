"""API keys managed live: the database's keys as KeySpecs, reloaded when their version moves.

Every replica polls one integer (`api_key_version`) each `key_poll_s`; when it changed, the
replica reads the keys again and swaps them in at once. If the database cannot be read the
last keys read stay in force (requests keep flowing) and the poll is retried.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from moerun.core.market.policy import Policy
from moerun.errors import StoreError
from moerun.serve.gateway.config import KeySpec
from moerun.store.keys import KeyRow, KeyTable

log = logging.getLogger("moerun.gateway")

# LiteLLM's `budget_duration` spellings for the calendar periods the gateway meters.
BUDGET_DURATIONS = {
    "1d": "day",
    "24h": "day",
    "day": "day",
    "7d": "week",
    "1w": "week",
    "week": "week",
    "30d": "month",
    "1mo": "month",
    "month": "month",
}


def key_spec(row: KeyRow) -> KeySpec:
    """The KeySpec of a stored key (its policy was validated when it was generated)."""
    policy = row.metadata.get("policy")
    return KeySpec(
        name=row.key_name,
        digest=bytes.fromhex(row.key_sha256),
        policy=Policy.from_dict(policy if isinstance(policy, dict) else None),
        budget_usd=row.max_budget_usd,
        budget_period=row.budget_period,
        requests_per_minute=row.rpm_limit,
        tokens_per_minute=row.tpm_limit,
        models=row.models,
    )


class LiveKeys:
    """The keys of one database as this replica last read them."""

    def __init__(
        self,
        table: KeyTable,
        apply: Callable[[list[KeySpec]], Awaitable[None]],
    ) -> None:
        self.table = table
        self.apply = apply
        self.version: int | None = None
        self.rows: dict[str, KeyRow] = {}  # by hex digest

    async def refresh(self, force: bool = False) -> None:
        """Read the keys again if their version moved (or if forced)."""
        if not force and await asyncio.to_thread(self.table.version) == self.version:
            return
        version, rows = await asyncio.to_thread(self.table.load)
        specs = []
        for row in rows:
            try:
                specs.append(key_spec(row))
            except Exception as exc:  # a row written by hand, not by /key/generate
                log.error("ignoring stored key %s: %s", row.key_name, exc)
        self.rows = {r.key_sha256: r for r in rows}
        self.version = version
        await self.apply(specs)

    async def run(self, poll_s: float) -> None:
        """Poll forever (cancel to stop)."""
        while True:
            await asyncio.sleep(poll_s)
            try:
                await self.refresh()
            except StoreError as exc:
                log.warning("cannot read the live keys (keeping the last ones): %s", exc)
