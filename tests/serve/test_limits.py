"""Rate limits and budgets: in-process, across a restart, and shared by replicas through Redis."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.fixtures.services import REDIS_URL
from tests.fixtures.upstream import UpstreamServer, free_port
from tests.serve.factories import MODEL, GatewayServer, backend_entry, key_entry, make_config

BODY = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
PRICED = {"input_usd_per_mtok": 1000.0, "output_usd_per_mtok": 1000.0}  # 20 tokens = $0.02


def _codes(gw: GatewayServer, n: int, key: str = "sk-1") -> list[tuple[int, str | None]]:
    out = []
    for _ in range(n):
        r = httpx.post(
            gw.url + "/v1/chat/completions", json=BODY, headers={"authorization": f"Bearer {key}"}
        )
        out.append((r.status_code, r.json()["error"]["code"] if r.status_code != 200 else None))
    return out


def _within_one_minute(seconds_needed: float = 20.0) -> None:
    """Limits count per calendar minute: wait for a fresh minute when this one is nearly over,
    so the requests a test sends all fall in one window."""
    into = time.time() % 60
    if into > 60 - seconds_needed:
        time.sleep(60 - into + 0.05)


def _config(be: UpstreamServer, url: str, key: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return make_config([backend_entry("a", be, **PRICED)], url, keys=[key], **fields)


def test_requests_per_minute(
    upstream: Callable[..., UpstreamServer], gateway: Callable[..., GatewayServer], sqlite_url: str
) -> None:
    gw = gateway(_config(upstream(), sqlite_url, key_entry("k", "sk-1", requests_per_minute=3)))
    _within_one_minute()
    codes = _codes(gw, 4)
    assert codes[:3] == [(200, None)] * 3 and codes[3] == (429, "rate_limit_exceeded")


def test_tokens_per_minute(
    upstream: Callable[..., UpstreamServer], gateway: Callable[..., GatewayServer], sqlite_url: str
) -> None:
    gw = gateway(_config(upstream(), sqlite_url, key_entry("k", "sk-1", tokens_per_minute=25)))
    _within_one_minute()
    assert _codes(gw, 3) == [(200, None), (200, None), (429, "rate_limit_exceeded")]


def test_budget_holds_across_a_restart(
    upstream: Callable[..., UpstreamServer], gateway: Callable[..., GatewayServer], sqlite_url: str
) -> None:
    be = upstream()
    cfg = _config(be, sqlite_url, key_entry("k", "sk-1", budget_usd=0.03))
    first = gateway(cfg)
    assert _codes(first, 3) == [(200, None), (200, None), (429, "insufficient_quota")]
    first.stop()
    again = gateway(cfg)  # the ledger says $0.04 were spent this month
    assert _codes(again, 1) == [(429, "insufficient_quota")]


def test_redis_shares_limits_between_replicas(
    upstream: Callable[..., UpstreamServer],
    gateway: Callable[..., GatewayServer],
    sqlite_url: str,
    redis_prefix: str,
) -> None:
    be = upstream()
    key = key_entry("k", "sk-1", requests_per_minute=4, budget_usd=1.0)
    cfg = _config(be, sqlite_url, key, redis_url=REDIS_URL, redis_prefix=redis_prefix)
    one, two = gateway(cfg), gateway(cfg)
    _within_one_minute()
    codes = [_codes(gw, 1)[0] for gw in (one, two, one, two, one, two)]
    assert codes[:4] == [(200, None)] * 4 and set(codes[4:]) == {(429, "rate_limit_exceeded")}

    budget = key_entry("b", "sk-2", budget_usd=0.03)
    cfg = _config(be, sqlite_url, budget, redis_url=REDIS_URL, redis_prefix=redis_prefix + "b:")
    one, two = gateway(cfg), gateway(cfg)
    got = [_codes(gw, 1, "sk-2")[0] for gw in (one, two, one, two)]
    assert got == [(200, None), (200, None), (429, "insufficient_quota")] * 1 + [
        (429, "insufficient_quota")
    ]


def test_unreachable_redis_refuses_with_503(
    upstream: Callable[..., UpstreamServer], gateway: Callable[..., GatewayServer], sqlite_url: str
) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    cfg = _config(
        upstream(), sqlite_url, key_entry("k", "sk-1", requests_per_minute=10), redis_url=dead
    )
    gw = gateway(cfg)
    assert _codes(gw, 1) == [(503, "limits_unavailable")]
