"""A ledger that cannot commit: no answer is delivered unmetered, and startup fails loudly."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import yaml

from moerun.cli import main
from moerun.core.traffic.metering import UsageRecord
from moerun.errors import StoreError
from moerun.serve.gateway import GatewayApp, parse_config
from moerun.store.durable import OK, SPOOLING, UNWRITABLE
from tests.fixtures.upstream import UpstreamServer, free_port
from tests.serve.factories import MODEL, backend_entry, make_config


def test_answers_are_withheld_when_the_ledger_fails(
    upstream: Callable[..., UpstreamServer], sqlite_url: str
) -> None:
    be = upstream(name="a")
    app = GatewayApp(
        parse_config(yaml.safe_dump(make_config([backend_entry("a", be)], sqlite_url)), {})
    )

    async def broken(rec: UsageRecord) -> None:
        raise StoreError("disk full")

    async def go() -> tuple[httpx.Response, httpx.Response]:
        await app.startup()
        assert app.ledger is not None
        app.ledger.record = broken  # type: ignore[method-assign]
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
                body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
                plain = await client.post("/v1/chat/completions", json=body)
                streamed = await client.post("/v1/chat/completions", json=body | {"stream": True})
                return plain, streamed
        finally:
            await app.shutdown()

    plain, streamed = asyncio.run(go())
    assert plain.status_code == 503
    assert plain.json()["error"]["code"] == "ledger_unavailable"
    events = [line[6:] for line in streamed.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    assert json.loads(events[-2])["error"]["code"] == "ledger_unavailable"


def test_gateway_command_fails_on_an_unusable_ledger(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = {
        "backends": [{"name": "a", "kind": "self-hosted", "base_url": "http://127.0.0.1:1/v1"}],
        "models": {MODEL: ["a"]},
        "database_url": f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none",
    }
    path = tmp_path / "gw.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["gateway", "--config", str(path), "--port", str(free_port())]) == 2
    err = capsys.readouterr().err
    assert "ledger database postgresql+psycopg://nobody@127.0.0.1" in err
    assert err.count("moerun: error:") == 1


def test_health_reports_the_ledger_state(
    upstream: Callable[..., UpstreamServer], sqlite_url: str
) -> None:
    be = upstream(name="a")
    app = GatewayApp(
        parse_config(yaml.safe_dump(make_config([backend_entry("a", be)], sqlite_url)), {})
    )

    async def go() -> list[tuple[int, dict[str, object], str]]:
        await app.startup()
        assert app.ledger is not None
        seen = []
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
                for state in (OK, SPOOLING, UNWRITABLE):
                    app.ledger.state = state
                    health = await client.get("/health")
                    metrics = (await client.get("/metrics")).text
                    seen.append((health.status_code, health.json()["ledger"], metrics))
        finally:
            await app.shutdown()
        return seen

    (ok, spooling, unwritable) = asyncio.run(go())
    assert ok[:2] == (200, {"state": "ok", "spool_rows": 0})
    assert "moerun_gateway_ledger_state 0.0" in ok[2]
    assert spooling[:2] == (200, {"state": "spooling", "spool_rows": 0})  # still serving
    assert "moerun_gateway_ledger_state 1.0" in spooling[2]
    assert unwritable[:2] == (503, {"state": "unwritable", "spool_rows": 0})
    assert "moerun_gateway_ledger_state 2.0" in unwritable[2]
