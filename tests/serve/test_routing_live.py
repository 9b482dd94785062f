"""Routing through a live gateway: prefix affinity, session header, overflow to managed."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx

from tests.fixtures.upstream import UpstreamServer
from tests.serve.factories import MODEL, GatewayServer, backend_entry, make_config


def _ask(gw: GatewayServer, system: str, headers: dict[str, str] | None = None) -> str:
    body: dict[str, Any] = {
        "model": MODEL,
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": "hi"}],
    }
    r = httpx.post(gw.url + "/v1/chat/completions", json=body, headers=headers or {})
    assert r.status_code == 200, r.text
    return r.headers["x-moerun-backend"]


def test_prefix_affinity_and_session_header(
    upstream: Callable[..., UpstreamServer],
    gateway: Callable[..., GatewayServer],
    sqlite_url: str,
) -> None:
    a, b = upstream(name="a"), upstream(name="b")
    gw = gateway(make_config([backend_entry("a", a), backend_entry("b", b)], sqlite_url))
    prompts = [f"You are agent number {i}. " * 30 for i in range(6)]
    first = {p: _ask(gw, p) for p in prompts}
    assert set(first.values()) == {"a", "b"}  # cold prompts spread over both replicas
    for _ in range(3):
        for p in prompts:
            assert _ask(gw, p) == first[p]  # warm prompts return to their replica
    other = "b" if first[prompts[0]] == "a" else "a"
    session = {"x-session-id": "agent-7"}
    pinned = _ask(gw, "short", session)
    assert all(_ask(gw, f"different {i}", session) == pinned for i in range(5))
    # the session's binding outranks prefix affinity: a warm prompt of the other replica, sent
    # in the session, still goes to the session's replica; without the session it goes home
    away = next(p for p in prompts if first[p] != pinned)
    assert _ask(gw, away, session) == pinned
    assert _ask(gw, away) == first[away] != pinned
    assert other != first[prompts[0]]


def test_overflow_to_managed_when_replicas_are_saturated(
    upstream: Callable[..., UpstreamServer],
    gateway: Callable[..., GatewayServer],
    sqlite_url: str,
) -> None:
    slow = upstream(name="replica", num_chunks=4, chunk_delay_s=0.1)
    api = upstream(name="api")
    backends = [
        backend_entry("replica", slow),
        backend_entry("api", api, kind="managed", input_usd_per_mtok=1, output_usd_per_mtok=2),
    ]
    gw = gateway(make_config(backends, sqlite_url, overflow={"max_in_flight_per_replica": 2}))
    assert _ask(gw, "calm") == "replica"  # self-hosted is preferred while it keeps up
    seen: list[str] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        name = _ask(gw, f"burst {i}")
        with lock:
            seen.append(name)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts = Counter(seen)
    assert counts["replica"] >= 2 and counts["api"] >= 1
    assert _ask(gw, "calm again") == "replica"  # and traffic comes back as load falls
