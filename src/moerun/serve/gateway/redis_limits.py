"""Rate limits and budgets kept in Redis, shared by every gateway replica that uses it.

One round trip to admit a request (a pipeline: count it, read the minute's tokens and the
period's spend) and one to charge it. Keys expire on their own; a budget key missing at start
is seeded from the ledger (SET NX, so the first replica to start wins and later ones keep the
live count).
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.exceptions import RedisError

from moerun.errors import StoreError
from moerun.serve.gateway.config import KeySpec
from moerun.serve.gateway.limits import BUDGET, REQUESTS, TOKENS, Periods

_PERIOD_TTL_S = 40 * 86_400  # longer than any budget period


class RedisLimits:
    """Counters in Redis under `prefix`."""

    def __init__(self, url: str, prefix: str = "moerun:") -> None:
        self.redis = Redis.from_url(url, socket_connect_timeout=2.0, socket_timeout=2.0)
        self.prefix = prefix
        self.periods = Periods()

    def _names(self, key: KeySpec, now_s: float) -> tuple[str, str, str]:
        minute = int(now_s // 60)
        p = self.prefix
        spend = f"{p}spend:{key.name}:{self.periods.current(key.budget_period, now_s)}"
        return f"{p}rpm:{key.name}:{minute}", f"{p}tpm:{key.name}:{minute}", spend

    async def admit(self, key: KeySpec, now_s: float) -> str | None:
        """Count the request unless a limit is exhausted."""
        rpm, tpm, spend = self._names(key, now_s)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.incr(rpm)
                pipe.expire(rpm, 120)
                pipe.get(tpm)
                pipe.get(spend)
                num_requests, _, num_tokens, spent = await pipe.execute()
        except RedisError as exc:
            raise StoreError(f"rate limiter (Redis) unavailable: {exc}") from exc
        if key.requests_per_minute is not None and int(num_requests) > key.requests_per_minute:
            return REQUESTS
        if key.tokens_per_minute is not None and int(num_tokens or 0) >= key.tokens_per_minute:
            return TOKENS
        if key.budget_usd is not None and float(spent or 0.0) >= key.budget_usd:
            return BUDGET
        return None

    async def charge(self, key: KeySpec, num_tokens: int, cost_usd: float, now_s: float) -> None:
        """Add tokens to this minute and dollars to this period."""
        _, tpm, spend = self._names(key, now_s)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.incrby(tpm, num_tokens)
                pipe.expire(tpm, 120)
                if cost_usd:
                    pipe.incrbyfloat(spend, cost_usd)
                    pipe.expire(spend, _PERIOD_TTL_S)
                await pipe.execute()
        except RedisError as exc:
            raise StoreError(f"rate limiter (Redis) unavailable: {exc}") from exc

    async def seed_spend(self, key: KeySpec, spend_usd: float, now_s: float) -> None:
        """Start a key's budget from the ledger unless Redis already counts it."""
        _, _, spend = self._names(key, now_s)
        try:
            await self.redis.set(spend, repr(spend_usd), nx=True, ex=_PERIOD_TTL_S)
        except RedisError as exc:
            raise StoreError(f"rate limiter (Redis) at start: {exc}") from exc

    async def close(self) -> None:
        """Close the connection pool."""
        await self.redis.aclose()
