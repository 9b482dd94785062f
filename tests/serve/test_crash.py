"""The gateway SIGKILLed under load and restarted: every completed request has its record."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import create_engine, text

from tests.fixtures.processes import GatewayProcess, UpstreamProcess
from tests.serve.factories import MODEL


def _run_load(url: str, stop: threading.Event, done: list[str], lock: threading.Lock, stream: bool):
    body: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    if stream:
        body["stream"] = True
    with httpx.Client(timeout=10) as client:
        while not stop.is_set():
            try:
                if stream:
                    with client.stream("POST", url, json=body) as r:
                        lines = list(r.iter_lines())
                        if r.status_code == 200 and lines and lines[-1] == "data: [DONE]":
                            with lock:
                                done.append(r.headers["x-request-id"])
                else:
                    r = client.post(url, json=body)
                    if r.status_code == 200 and r.json().get("choices"):
                        with lock:
                            done.append(r.headers["x-request-id"])
            except httpx.HTTPError:
                time.sleep(0.01)  # the gateway is down: a request in flight has no answer


def _ledger_ids(database_url: str) -> set[str]:
    engine = create_engine(database_url)
    with engine.connect() as conn:
        ids = {r[0] for r in conn.execute(text("SELECT request_id FROM usage_records"))}
    engine.dispose()
    return ids


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_sigkill_under_load_loses_no_completed_request(
    db: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    database_url = (
        f"sqlite:///{tmp_path / 'usage.db'}"
        if db == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    backend = UpstreamProcess(tmp_path, "a", num_chunks=8, chunk_delay_s=0.005).start()
    config = {
        "backends": [
            {"name": "a", "kind": "self-hosted", "base_url": backend.url + "/v1", "model": "m"}
        ],
        "models": {MODEL: ["a"]},
        "database_url": database_url,
        "server": {"access_log": False},
    }
    path = tmp_path / "gw.yaml"
    path.write_text(yaml.safe_dump(config))
    gw = GatewayProcess(path, tmp_path).start()
    done: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    url = gw.url + "/v1/chat/completions"
    threads = [
        threading.Thread(target=_run_load, args=(url, stop, done, lock, i % 2 == 0))
        for i in range(6)
    ]
    try:
        for t in threads:
            t.start()
        time.sleep(1.5)
        gw.kill()
        with lock:
            completed_before = list(done)
        gw = GatewayProcess(path, tmp_path, port=gw.port).start()
        time.sleep(1.0)
        stop.set()
        for t in threads:
            t.join(timeout=20)
        assert len(completed_before) > 20
        assert len(done) > len(completed_before)  # the restarted gateway serves again
        missing = set(done) - _ledger_ids(database_url)
        assert not missing, f"{len(missing)} completed requests have no usage record"
    finally:
        stop.set()
        gw.stop()
        backend.stop()
