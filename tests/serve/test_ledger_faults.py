"""PostgreSQL stopped and paused under load (real processes, a private cluster): clients are
served throughout, and afterwards every completed request has exactly one correct row."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import yaml

from tests.fixtures.private import PrivatePostgres
from tests.fixtures.processes import GatewayProcess, UpstreamProcess
from tests.serve.factories import MODEL

NUM_CHUNKS = 8
CHUNK_DELAY_S = 0.005
PRICES = {"input_usd_per_mtok": 1.0, "cached_input_usd_per_mtok": 0.5, "output_usd_per_mtok": 2.0}
# The upstream fixture reports 12 prompt tokens, 8 of them cached, and one token per chunk.
COST_USD = ((12 - 8) * 1.0 + 8 * 0.5 + NUM_CHUNKS * 2.0) / 1e6
COMMIT_TIMEOUT_S = 1.0
HANG_S = COMMIT_TIMEOUT_S + 3.0  # the most any request may take: one commit timeout, then spool


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivatePostgres]:
    pg = PrivatePostgres().start()
    try:
        yield pg
    finally:
        pg.close()


def _database(pg: PrivatePostgres, name: str) -> str:
    with psycopg.connect(f"host=127.0.0.1 port={pg.port} user=postgres", autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name}")
    return pg.url.rsplit("/", 1)[0] + "/" + name


class Load:
    """Client threads, half streaming, that note every outcome and its timings."""

    def __init__(self, url: str, num_threads: int = 6) -> None:
        self.url = url + "/v1/chat/completions"
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.done: dict[str, tuple[bool, float, float | None]] = {}  # id -> stream, s, ttft s
        self.failures: list[str] = []
        self.threads = [
            threading.Thread(target=self._run, args=(i % 2 == 0,)) for i in range(num_threads)
        ]

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)

    def _run(self, stream: bool) -> None:
        body: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
        if stream:
            body["stream"] = True
        with httpx.Client(timeout=30) as client:
            while not self.stop.is_set():
                t0 = time.monotonic()
                first: float | None = None
                why = ""
                try:
                    if stream:
                        with client.stream("POST", self.url, json=body) as r:
                            lines = []
                            for line in r.iter_lines():
                                if first is None and line.startswith("data: "):
                                    first = time.monotonic() - t0
                                lines.append(line)
                            lines = [line for line in lines if line]
                            ok = r.status_code == 200 and lines[-1:] == ["data: [DONE]"]
                            ok = ok and not any('"error"' in line for line in lines)
                            why = f"stream ending {lines[-2:]}"
                    else:
                        r = client.post(self.url, json=body)
                        ok = r.status_code == 200 and bool(r.json().get("choices"))
                    why = why or f"HTTP {r.status_code}: {r.text[:200]}"
                except httpx.HTTPError as exc:
                    ok, why = False, type(exc).__name__
                    time.sleep(0.05)  # the gateway is down: do not spin
                elapsed = time.monotonic() - t0
                with self.lock:
                    if not ok:
                        self.failures.append(why)
                    elif elapsed > HANG_S:
                        self.failures.append(f"took {elapsed:.1f} s")
                    else:
                        self.done[r.headers["x-request-id"]] = (stream, elapsed, first)


def _rows(database_url: str) -> list[tuple[Any, ...]]:
    conninfo = database_url.replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(conninfo) as conn:
        return conn.execute(
            "SELECT request_id, stream, status, http_status, input_tokens, cached_tokens, "
            "output_tokens, cost_usd, ttft_ms, duration_ms FROM usage_records"
        ).fetchall()


def _start(tmp_path: Path, database_url: str) -> tuple[UpstreamProcess, GatewayProcess, Path]:
    backend = UpstreamProcess(
        tmp_path, "a", num_chunks=NUM_CHUNKS, chunk_delay_s=CHUNK_DELAY_S
    ).start()
    config = {
        "backends": [
            {
                "name": "a",
                "kind": "self-hosted",
                "base_url": backend.url + "/v1",
                "model": "m",
                **PRICES,
            }
        ],
        "models": {MODEL: ["a"]},
        "database_url": database_url,
        "server": {"access_log": False},
        "ledger": {"commit_timeout_s": COMMIT_TIMEOUT_S, "spool_dir": str(tmp_path / "spool")},
    }
    path = tmp_path / "gw.yaml"
    path.write_text(yaml.safe_dump(config))
    return backend, _ready(GatewayProcess(path, tmp_path).start()), path


def _ready(gw: GatewayProcess) -> GatewayProcess:
    """Wait until the app has started (the port listens before the ledger is open)."""
    deadline = time.monotonic() + 20
    while httpx.get(gw.url + "/health", timeout=5).status_code != 200:
        assert time.monotonic() < deadline, "the gateway did not start"
        time.sleep(0.05)
    return gw


def _wait_drained(gw_url: str, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        health: dict[str, Any] = httpx.get(gw_url + "/health", timeout=5).json()
        if health["ledger"] == {"state": "ok", "spool_rows": 0} or time.monotonic() > deadline:
            return health
        time.sleep(0.2)


def _check_rows(database_url: str, done: dict[str, tuple[bool, float, float | None]]) -> None:
    rows = _rows(database_url)
    ids = [r[0] for r in rows]
    assert len(ids) == len(set(ids))
    assert set(ids) == set(done), (
        f"{len(set(done) - set(ids))} completed requests without a row, "
        f"{len(set(ids) - set(done))} rows for requests never completed"
    )
    for rid, stream, status, http, inp, cached, out, cost, ttft_ms, dur_ms in rows:
        was_stream, elapsed_s, first_s = done[rid]
        assert (stream, status, http) == (was_stream, "ok", 200)
        assert (inp, cached, out) == (12, 8, NUM_CHUNKS)
        assert cost == pytest.approx(COST_USD)
        # The gateway's clock starts after the client's and stops before it.
        assert 0 < dur_ms <= elapsed_s * 1000
        if stream:
            assert first_s is not None and ttft_ms is not None
            assert 0 < ttft_ms <= first_s * 1000
            # the first token comes before the other chunks, 5 ms apart, and the commit
            assert ttft_ms < dur_ms
        else:
            assert ttft_ms is None


def test_postgres_stopped_and_paused_under_load(cluster: PrivatePostgres, tmp_path: Path) -> None:
    database_url = _database(cluster, "faults")
    backend, gw, _ = _start(tmp_path, database_url)
    try:
        with Load(gw.url) as load:
            time.sleep(1.5)
            cluster.stop()  # down for ~10 s: connections refused
            time.sleep(3.0)
            health = httpx.get(gw.url + "/health", timeout=5)
            metrics = httpx.get(gw.url + "/metrics", timeout=5).text
            assert health.status_code == 200
            assert health.json()["ledger"]["state"] == "spooling"
            assert health.json()["ledger"]["spool_rows"] > 0
            assert "moerun_gateway_ledger_state 1.0" in metrics
            time.sleep(7.0)
            with load.lock:
                served_while_down = len(load.done)
            cluster.start()
            time.sleep(3.0)
            cluster.pause()  # hung for ~5 s: connections open, nothing answers
            time.sleep(5.0)
            cluster.resume()
            drained = _wait_drained(gw.url, 20.0)
            time.sleep(0.5)
        assert drained["ledger"] == {"state": "ok", "spool_rows": 0}
        assert not load.failures, f"{len(load.failures)} failed: {load.failures[:5]}"
        assert served_while_down > 20 and len(load.done) > served_while_down
        metrics = httpx.get(gw.url + "/metrics", timeout=5).text
        assert "moerun_gateway_ledger_state 0.0" in metrics
        _check_rows(database_url, load.done)
    finally:
        gw.stop()
        backend.stop()


def test_gateway_killed_while_spooling_loses_no_row(
    cluster: PrivatePostgres, tmp_path: Path
) -> None:
    database_url = _database(cluster, "crash")
    backend, gw, path = _start(tmp_path, database_url)
    try:
        with Load(gw.url, num_threads=4) as load:
            time.sleep(1.0)
            cluster.stop()
            time.sleep(2.5)  # spooling now
            gw.kill()  # requests cut by the kill have no answer: not counted
            cluster.start()  # the gateway migrates the database at start: it must be up
            gw = _ready(GatewayProcess(path, tmp_path, port=gw.port).start())
            time.sleep(1.0)
            load.stop.set()
        drained = _wait_drained(gw.url, 20.0)
        assert drained["ledger"] == {"state": "ok", "spool_rows": 0}
        rows = {r[0] for r in _rows(database_url)}
        missing = set(load.done) - rows
        assert not missing, f"{len(missing)} completed requests have no usage record"
        assert len(load.done) > 20
    finally:
        gw.stop()
        backend.stop()
