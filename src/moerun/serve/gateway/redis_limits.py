"""Rate limits and budgets kept in Redis, shared by every gateway replica that uses it.

One round trip to count a request (a pipeline: count it, read the minute's tokens), one Lua
script to reserve a budgeted request's maximum cost atomically (refused once spend plus
reservations reach the budget), one to settle it. Dollars are integer nano-USD in a hash with
the `epoch` of its seeding. The ledger is the source of truth: a budget counter that is
missing (first use in a period, or Redis restarted or evicted it) is re-seeded from the
ledger's spend before the request is admitted; a hold made before a re-seed settles its full
cost (the ledger did not have its row yet), which may count a request twice, never zero times.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from moerun.errors import StoreError
from moerun.serve.gateway.config import KeySpec
from moerun.serve.gateway.limits import BUDGET, REQUESTS, TOKENS, Hold, Periods

_PERIOD_TTL_S = 40 * 86_400  # longer than any budget period
_NUSD = 1e9  # nano-dollars per dollar

# KEYS[1] spend hash; ARGV budget, reservation (nano-USD). -> {-1} missing, {0} refused,
# {1, epoch} reserved.
_RESERVE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1, ''} end
local spent = tonumber(redis.call('HGET', KEYS[1], 'nusd'))
if spent >= tonumber(ARGV[1]) then return {0, ''} end
redis.call('HINCRBY', KEYS[1], 'nusd', ARGV[2])
return {1, redis.call('HGET', KEYS[1], 'epoch')}
"""
# KEYS[1]; ARGV spend (nano-USD), epoch, ttl. Seeds only a missing counter.
_SEED = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'nusd', ARGV[1], 'epoch', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""
# KEYS[1]; ARGV cost, reserved (nano-USD), epoch of the hold.
_SETTLE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HGET', KEYS[1], 'epoch') == ARGV[3] then
  redis.call('HINCRBY', KEYS[1], 'nusd', tonumber(ARGV[1]) - tonumber(ARGV[2]))
else
  redis.call('HINCRBY', KEYS[1], 'nusd', ARGV[1])
end
return 1
"""

# (key, now) -> the key's spend in the ledger over its budget period holding now
SpendSource = Callable[[KeySpec, float], Awaitable[float]]


class RedisLimits:
    """Counters in Redis under `prefix`; `ledger_spend` re-seeds a lost budget counter."""

    def __init__(
        self, url: str, prefix: str = "moerun:", ledger_spend: SpendSource | None = None
    ) -> None:
        # One immediate retry on a dropped connection: a restarted Redis costs no request.
        self.redis = Redis.from_url(
            url,
            socket_connect_timeout=2.0,
            socket_timeout=2.0,
            retry=Retry(NoBackoff(), 1),
            retry_on_error=[RedisConnectionError],
        )
        self.prefix = prefix
        self.periods = Periods()
        self.ledger_spend = ledger_spend
        self._reserve = self.redis.register_script(_RESERVE)
        self._seed = self.redis.register_script(_SEED)
        self._settle = self.redis.register_script(_SETTLE)

    def _names(self, key: KeySpec, now_s: float) -> tuple[str, str]:
        minute = int(now_s // 60)
        return f"{self.prefix}rpm:{key.name}:{minute}", f"{self.prefix}tpm:{key.name}:{minute}"

    def _spend_name(self, key: KeySpec, period: str) -> str:
        return f"{self.prefix}budget:{key.name}:{period}"

    async def admit(
        self, key: KeySpec, now_s: float, max_cost_usd: float = 0.0
    ) -> tuple[str | None, Hold | None]:
        """Count the request and reserve its maximum cost unless a limit is exhausted."""
        rpm, tpm = self._names(key, now_s)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.incr(rpm)
                pipe.expire(rpm, 120)
                pipe.get(tpm)
                num_requests, _, num_tokens = await pipe.execute()
            if key.requests_per_minute is not None and int(num_requests) > key.requests_per_minute:
                return REQUESTS, None
            if key.tokens_per_minute is not None and int(num_tokens or 0) >= key.tokens_per_minute:
                return TOKENS, None
            if key.budget_usd is None:
                return None, None
            return await self._reserve_budget(key, now_s, max_cost_usd)
        except RedisError as exc:
            raise StoreError(f"rate limiter (Redis) unavailable: {exc}") from exc

    async def _reserve_budget(
        self, key: KeySpec, now_s: float, max_cost_usd: float
    ) -> tuple[str | None, Hold | None]:
        assert key.budget_usd is not None
        period = self.periods.current(key.budget_period, now_s)
        name = self._spend_name(key, period)
        args = [round(key.budget_usd * _NUSD), round(max_cost_usd * _NUSD)]
        for _ in range(3):
            status, epoch = await self._reserve(keys=[name], args=args)
            if status == 1:
                return None, Hold(period, max_cost_usd, epoch.decode())
            if status == 0:
                return BUDGET, None
            await self._reseed(key, now_s, name)
        raise StoreError(f"budget counter of key {key.name} keeps disappearing from Redis")

    async def _reseed(self, key: KeySpec, now_s: float, name: str) -> None:
        spend = 0.0
        if self.ledger_spend is not None:
            spend = await self.ledger_spend(key, now_s)
        await self._seed(
            keys=[name], args=[round(spend * _NUSD), os.urandom(8).hex(), _PERIOD_TTL_S]
        )

    async def charge(
        self, key: KeySpec, num_tokens: int, cost_usd: float, now_s: float, hold: Hold | None
    ) -> None:
        """Add tokens to this minute; settle the reservation to the real cost."""
        _, tpm = self._names(key, now_s)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.incrby(tpm, num_tokens)
                pipe.expire(tpm, 120)
                await pipe.execute()
            if key.budget_usd is not None:
                period = hold.period if hold else self.periods.current(key.budget_period, now_s)
                reserved = round(hold.reserved_usd * _NUSD) if hold else 0
                epoch = hold.epoch if hold else ""
                await self._settle(
                    keys=[self._spend_name(key, period)],
                    args=[round(cost_usd * _NUSD), reserved, epoch],
                )
        except RedisError as exc:
            raise StoreError(f"rate limiter (Redis) unavailable: {exc}") from exc

    async def seed_spend(self, key: KeySpec, spend_usd: float, now_s: float) -> None:
        """Start a key's budget from the ledger unless Redis already counts it."""
        name = self._spend_name(key, self.periods.current(key.budget_period, now_s))
        try:
            await self._seed(
                keys=[name], args=[round(spend_usd * _NUSD), os.urandom(8).hex(), _PERIOD_TTL_S]
            )
        except RedisError as exc:
            raise StoreError(f"rate limiter (Redis) at start: {exc}") from exc

    async def close(self) -> None:
        """Close the connection pool."""
        await self.redis.aclose()
