"""Faults with real processes: killed, hanging and failing backends, clients that leave."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.fixtures.processes import UpstreamProcess
from tests.fixtures.upstream import UpstreamServer
from tests.serve.factories import MODEL, GatewayServer, make_config

HI: Any = [{"role": "user", "content": "hi"}]


def _entry(name: str, url: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "kind": "self-hosted", "base_url": url + "/v1", "model": "m", **fields}


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Callable[..., UpstreamProcess]]:
    started: list[UpstreamProcess] = []

    def make(name: str, **options: Any) -> UpstreamProcess:
        p = UpstreamProcess(tmp_path, name, **options).start()
        started.append(p)
        return p

    yield make
    for p in started:
        p.stop()


def _statuses(gw: GatewayServer) -> list[tuple[str, str]]:
    path = gw.app.config.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT backend, status FROM usage_records ORDER BY id").fetchall()


def test_backend_killed_mid_run(
    procs: Callable[..., UpstreamProcess],
    gateway: Callable[..., GatewayServer],
    sqlite_url: str,
) -> None:
    a = procs("a", num_chunks=8, chunk_delay_s=0.04)
    b = procs("b", num_chunks=8, chunk_delay_s=0.04)
    gw = gateway(make_config([_entry("a", a.url), _entry("b", b.url)], sqlite_url))
    outcomes: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def worker(stream: bool) -> None:
        with gw.client() as client:
            while not stop.is_set():
                try:
                    if stream:
                        chunks = list(
                            client.chat.completions.create(model=MODEL, messages=HI, stream=True)
                        )
                        assert "".join(
                            c.choices[0].delta.content or "" for c in chunks if c.choices
                        )
                    else:
                        client.chat.completions.create(model=MODEL, messages=HI)
                    result = "ok"
                except openai.APIError as exc:  # a clean error event in a started stream
                    assert stream and "stream broke" in str(exc), exc
                    result = "stream_error"
                with lock:
                    outcomes.append(result)

    threads = [threading.Thread(target=worker, args=(i % 2 == 0,)) for i in range(6)]
    for t in threads:
        t.start()
    time.sleep(0.8)
    a.kill()
    time.sleep(1.0)
    stop.set()
    for t in threads:
        t.join(timeout=20)
    assert outcomes.count("ok") > 20
    # Only streams that had started on the killed backend may fail, and only cleanly.
    assert set(outcomes) <= {"ok", "stream_error"}
    rows = _statuses(gw)
    assert sum(1 for _, s in rows if s == "ok") >= outcomes.count("ok")
    # a second of traffic after the kill: the last rows were all served by the surviving b
    assert rows[-5:] == [("b", "ok")] * 5, rows[-5:]


def test_hanging_backend_times_out_and_fails_over(
    upstream: Callable[..., UpstreamServer],
    gateway: Callable[..., GatewayServer],
    sqlite_url: str,
) -> None:
    hung, ok = upstream(name="hung", mode="hang"), upstream(name="ok")
    timeouts = {"connect_s": 1, "first_byte_s": 0.3, "read_s": 0.3, "total_s": 0.3}
    gw = gateway(
        make_config(
            [_entry("hung", hung.url, health_check=False), _entry("ok", ok.url)],
            sqlite_url,
            timeouts=timeouts,
        )
    )
    with gw.client() as client:
        for _ in range(4):
            r = client.chat.completions.create(model=MODEL, messages=HI)
            assert r.choices[0].message.content == "hello from ok"
    alone = gateway(
        make_config([_entry("hung", hung.url, health_check=False)], sqlite_url, timeouts=timeouts)
    )
    t0 = time.monotonic()
    r = httpx.post(alone.url + "/v1/chat/completions", json={"model": MODEL, "messages": HI})
    assert r.status_code == 504 and r.json()["error"]["code"] == "upstream_timeout"
    assert time.monotonic() - t0 < 3


def test_stream_that_hangs_midway_ends_with_error_event(
    upstream: Callable[..., UpstreamServer],
    gateway: Callable[..., GatewayServer],
    sqlite_url: str,
) -> None:
    be = upstream(name="a")
    gw = gateway(make_config([_entry("a", be.url)], sqlite_url, timeouts={"read_s": 0.3}))
    msgs: Any = [{"role": "user", "content": "__hang_stream"}]
    with gw.client() as client, pytest.raises(openai.APIError, match="timed out"):
        list(client.chat.completions.create(model=MODEL, messages=msgs, stream=True))
    assert _statuses(gw)[-1] == ("a", "upstream_error")


def test_5xx_fails_over_and_opens_the_circuit_then_recovers(
    upstream: Callable[..., UpstreamServer],
    gateway: Callable[..., GatewayServer],
    sqlite_url: str,
) -> None:
    bad, good = upstream(name="bad", mode="fail500"), upstream(name="good")
    cfg = make_config(
        [_entry("bad", bad.url, health_check=False), _entry("good", good.url)],
        sqlite_url,
        circuit_breaker={"failure_threshold": 3, "cooldown_s": 0.5},
    )
    gw = gateway(cfg)
    with gw.client() as client:
        for _ in range(8):
            r = client.chat.completions.create(model=MODEL, messages=HI)
            assert r.choices[0].message.content == "hello from good"
    health = httpx.get(gw.url + "/health").json()
    assert health["backends"]["bad"]["circuit"] == "open"
    asked = bad.behaviour.stats["requests"]
    assert asked <= 4  # once open, the bad backend is not asked first any more
    bad.behaviour.mode = "ok"
    time.sleep(0.6)
    with gw.client() as client:
        for _ in range(6):
            client.chat.completions.create(model=MODEL, messages=HI)
    assert httpx.get(gw.url + "/health").json()["backends"]["bad"]["circuit"] == "closed"


def test_errors_caused_by_the_request_never_open_a_circuit(
    upstream: Callable[..., UpstreamServer],
    gateway: Callable[..., GatewayServer],
    sqlite_url: str,
) -> None:
    a, b = upstream(name="a"), upstream(name="b")
    cfg = make_config(
        [_entry("a", a.url), _entry("b", b.url)],
        sqlite_url,
        circuit_breaker={"failure_threshold": 2, "cooldown_s": 60},
    )
    gw = gateway(cfg)
    for content, status in (("__status_400", 400), ("__status_500", 500), ("__status_451", 451)):
        for _ in range(6):
            body = {"model": MODEL, "messages": [{"role": "user", "content": content}]}
            r = httpx.post(gw.url + "/v1/chat/completions", json=body)
            assert r.status_code == status
    states = httpx.get(gw.url + "/health").json()["backends"]
    assert {s["circuit"] for s in states.values()} == {"closed"}


def test_client_disconnect_cancels_the_upstream_stream(
    upstream: Callable[..., UpstreamServer],
    gateway: Callable[..., GatewayServer],
    sqlite_url: str,
) -> None:
    be = upstream(name="a")
    gw = gateway(make_config([_entry("a", be.url)], sqlite_url))
    body = {"model": MODEL, "messages": [{"role": "user", "content": "__slow"}], "stream": True}
    with httpx.stream("POST", gw.url + "/v1/chat/completions", json=body) as r:
        lines = r.iter_lines()
        got = [next(lines) for _ in range(4)]
        assert any(line.startswith("data: ") for line in got)
    deadline = time.monotonic() + 3
    while be.behaviour.stats["cancelled"] == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert be.behaviour.stats["cancelled"] == 1  # the backend saw the request go away
    deadline = time.monotonic() + 3
    while not _statuses(gw) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _statuses(gw) == [("a", "client_closed")]


def test_dead_backend_is_found_by_health_checks(
    procs: Callable[..., UpstreamProcess],
    gateway: Callable[..., GatewayServer],
    sqlite_url: str,
) -> None:
    a, b = procs("a"), procs("b")
    cfg = make_config(
        [_entry("a", a.url), _entry("b", b.url)],
        sqlite_url,
        health={"interval_s": 0.1, "timeout_s": 0.5},
    )
    gw = gateway(cfg)
    a.kill()
    deadline = time.monotonic() + 5
    while httpx.get(gw.url + "/health").json()["backends"]["a"]["healthy"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    with gw.client() as client:
        for _ in range(5):
            assert client.chat.completions.create(model=MODEL, messages=HI).choices
    assert b.stats()["requests"] == 5
