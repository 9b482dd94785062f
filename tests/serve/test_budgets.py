"""Budgets that hold: reserve the maximum cost at admission, settle at the end, re-seed a lost
Redis counter from the ledger; 40 concurrent requests on two gateway processes."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
import redis
import yaml

from moerun.core.market.policy import Policy
from moerun.core.traffic.metering import Prices
from moerun.serve.gateway.config import KeySpec
from moerun.serve.gateway.limits import BUDGET, Limits, MemoryLimits, max_cost_usd
from moerun.serve.gateway.redis_limits import RedisLimits
from tests.fixtures.private import PrivateRedis
from tests.fixtures.processes import GatewayProcess, UpstreamProcess
from tests.fixtures.services import REDIS_URL
from tests.serve.factories import MODEL

NOW_S = 1_796_000_000.0
KEY = KeySpec(name="k", digest=b"\0" * 32, policy=Policy.from_dict(None), budget_usd=1.0)


def test_max_cost_is_the_worst_allowed_backend() -> None:
    cheap = Prices(input_usd_per_mtok=1.0, cached_input_usd_per_mtok=0.1, output_usd_per_mtok=2.0)
    dear = Prices(input_usd_per_mtok=3.0, cached_input_usd_per_mtok=0.3, output_usd_per_mtok=15.0)
    # 1,000 prompt tokens, none assumed cached; output up to each backend's cap.
    got = max_cost_usd([(cheap, 4000), (dear, 100)], 1000)
    assert got == pytest.approx(max(1000 * 1.0 + 4000 * 2.0, 1000 * 3.0 + 100 * 15.0) / 1e6)
    assert max_cost_usd([], 1000) == 0.0


@pytest.fixture(params=["memory", "redis"])
def limits(request: pytest.FixtureRequest) -> Iterator[tuple[Limits, list[float]]]:
    ledger = [0.0]  # what the ledger says the key spent

    async def ledger_spend(key: KeySpec, now_s: float) -> float:
        return ledger[0]

    if request.param == "memory":
        yield MemoryLimits(), ledger
        return
    prefix: str = request.getfixturevalue("redis_prefix")
    yield RedisLimits(REDIS_URL, prefix, ledger_spend), ledger


def test_reserve_then_settle(limits: tuple[Limits, list[float]]) -> None:
    lim, _ledger = limits

    async def go() -> None:
        results = [await lim.admit(KEY, NOW_S, 0.3) for _ in range(5)]
        # Admitted while spend + holds < $1: 0, 0.3, 0.6, 0.9; then refused.
        assert [r for r, _ in results] == [None] * 4 + [BUDGET]
        holds = [h for _, h in results[:4]]
        assert all(h is not None and h.reserved_usd == 0.3 for h in holds)
        for hold in holds:  # each really cost $0.10
            await lim.charge(KEY, 20, 0.1, NOW_S, hold)
        # $0.40 spent: six more holds of $0.10 fit ($0.40 .. $0.90), the seventh does not
        again = [(await lim.admit(KEY, NOW_S, 0.1))[0] for _ in range(7)]
        assert again == [None] * 6 + [BUDGET]
        await lim.close()

    asyncio.run(go())


def test_a_lost_redis_counter_is_reseeded_from_the_ledger(redis_prefix: str) -> None:
    ledger = [0.0]

    async def ledger_spend(key: KeySpec, now_s: float) -> float:
        return ledger[0]

    lim = RedisLimits(REDIS_URL, redis_prefix, ledger_spend)
    client = redis.Redis.from_url(REDIS_URL)

    async def go() -> None:
        reason, hold = await lim.admit(KEY, NOW_S, 0.5)
        assert reason is None and hold is not None
        await lim.charge(KEY, 20, 0.7, NOW_S, hold)
        # Redis restarted empty; the ledger has $1.20 for this period (rows from everywhere).
        client.delete(*client.keys(redis_prefix + "*"))
        ledger[0] = 1.2
        assert (await lim.admit(KEY, NOW_S, 0.01))[0] == BUDGET
        # Re-seeded below the budget: admitted again.
        client.delete(*client.keys(redis_prefix + "*"))
        ledger[0] = 0.25
        reason, hold = await lim.admit(KEY, NOW_S, 0.5)
        assert reason is None and hold is not None
        (name,) = [k for k in client.keys(redis_prefix + "budget:*")]
        assert int(client.hget(name, "nusd") or 0) == 750_000_000  # $0.25 + the $0.50 hold
        await lim.close()

    try:
        asyncio.run(go())
    finally:
        client.close()


# The fake upstream reports 12 prompt tokens (8 cached) and 8 completion tokens per request.
PRICE = 1000.0  # USD per million tokens, input (cached too) and output alike
COST_USD = (12 + 8) * PRICE / 1e6
# routing text [{"role":"user","content":"hello world, hi!"}] is 46 characters: 12 tokens
# estimated, and max_tokens is 8: the reservation is exactly the real cost.
BODY = {
    "model": MODEL,
    "max_tokens": 8,
    "messages": [{"role": "user", "content": "hello world, hi!"}],
}
MAX_COST_USD = (12 + 8) * PRICE / 1e6
BUDGET_USD = 10 * COST_USD


def _gateway_config(
    tmp_path: Path, backend: UpstreamProcess, redis_url: str, database_url: str, secret: str
) -> Path:
    config = {
        "backends": [
            {
                "name": "a",
                "kind": "self-hosted",
                "base_url": backend.url + "/v1",
                "model": "m",
                "input_usd_per_mtok": PRICE,
                "output_usd_per_mtok": PRICE,
            }
        ],
        "models": {MODEL: ["a"]},
        "keys": [
            {
                "name": "team",
                "key_sha256": hashlib.sha256(secret.encode()).hexdigest(),
                "budget_usd": BUDGET_USD,
            }
        ],
        "database_url": database_url,
        "redis_url": redis_url,
        "server": {"access_log": False},
        "ledger": {"spool_dir": str(tmp_path / "spool")},
    }
    path = tmp_path / "gw.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


async def _burst(urls: list[str], secret: str, n: int) -> list[int]:
    headers = {"authorization": f"Bearer {secret}"}
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=n)) as client:

        async def one(i: int) -> int:
            url = urls[i % len(urls)] + "/v1/chat/completions"
            r = await client.post(url, json=BODY | {"stream": i % 4 == 0}, headers=headers)
            if r.status_code == 429:
                assert r.json()["error"]["code"] == "insufficient_quota"
            return r.status_code

        return list(await asyncio.gather(*(one(i) for i in range(n))))


def _ledger_spend(database_url: str) -> float:
    conninfo = database_url.replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(conninfo) as conn:
        row = conn.execute("SELECT COALESCE(SUM(cost_usd), 0) FROM usage_records").fetchone()
    assert row is not None
    return float(row[0])


def test_burst_on_two_replicas_and_a_redis_restart(tmp_path: Path, pg_url: str) -> None:
    secret = "sk-team-budget"
    backend = UpstreamProcess(tmp_path, "a", num_chunks=8, chunk_delay_s=0.05).start()
    cache = PrivateRedis(tmp_path / "redis").start()
    path = _gateway_config(tmp_path, backend, cache.url, pg_url, secret)
    one = GatewayProcess(path, tmp_path).start()
    two = GatewayProcess(path, tmp_path).start()
    urls = [one.url, two.url]
    try:
        for gw in (one, two):
            while httpx.get(gw.url + "/health", timeout=5).status_code != 200:
                time.sleep(0.05)
        codes = asyncio.run(_burst(urls, secret, 40))
        assert set(codes) <= {200, 429}
        admitted = codes.count(200)
        spent = _ledger_spend(pg_url)
        assert spent == pytest.approx(admitted * COST_USD)
        # At most one request's maximum cost over the budget (here: not over at all).
        assert spent <= BUDGET_USD + MAX_COST_USD + 1e-9
        assert 9 <= admitted <= 11
        # Drive it to the budget, then one more is refused on either replica.
        for i in range(20):
            if asyncio.run(_burst([urls[i % 2]], secret, 1)) == [429]:
                break
        assert _ledger_spend(pg_url) >= BUDGET_USD - 1e-9
        assert asyncio.run(_burst(urls, secret, 2)) == [429, 429]

        cache.kill()  # every counter is lost
        cache.start()
        deadline = time.monotonic() + 5
        seen: list[int] = []
        while time.monotonic() < deadline and seen[-2:] != [429, 429]:
            seen += asyncio.run(_burst(urls, secret, 2))
        assert seen[:2] == [429, 429], f"after the Redis restart: {seen}"
        assert _ledger_spend(pg_url) <= BUDGET_USD + MAX_COST_USD + 1e-9
    finally:
        one.stop()
        two.stop()
        backend.stop()
        cache.close()
