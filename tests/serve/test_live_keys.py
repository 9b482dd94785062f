"""Keys managed live across two real gateway processes on one database (the issue's test):
a key generated on one replica works on the other within 2 s, is refused for models outside
its list, is refused everywhere within 2 s of deletion, and is stored only as a hash."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml
from sqlalchemy import create_engine, text

from tests.fixtures.processes import GatewayProcess
from tests.fixtures.upstream import UpstreamServer
from tests.serve.factories import MODEL, GatewayServer, backend_entry, key_entry, make_config

MASTER = "sk-master-" + "m" * 24
OTHER = "other-model"
STATIC = "sk-static-yaml-key"
PROPAGATION_S = 2.0


def _config(up: UpstreamServer, database_url: str) -> dict[str, Any]:
    backend = backend_entry("a", up, input_usd_per_mtok=1.0, output_usd_per_mtok=2.0)
    cfg = make_config([backend], database_url)
    cfg["models"] = {MODEL: ["a"], OTHER: ["a"]}
    cfg["keys"] = [key_entry("static", STATIC)]
    return cfg


def _chat(url: str, key: str, model: str = MODEL) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    return httpx.post(
        url + "/v1/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {key}"},
        timeout=10,
    )


def _admin(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"authorization": f"Bearer {MASTER}"}, timeout=10)


def _until(check: Callable[[], bool], limit_s: float) -> float:
    """Seconds until check() holds (polled every 50 ms); fails past limit_s."""
    t0 = time.monotonic()
    while not check():
        assert time.monotonic() - t0 < limit_s + 1.0, "never happened"
        time.sleep(0.05)
    return time.monotonic() - t0


@pytest.fixture(params=["sqlite", "postgresql"])
def replicas(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[GatewayProcess, GatewayProcess, str]]:
    database_url = (
        f"sqlite:///{tmp_path / 'usage.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    up = UpstreamServer().start()
    path = tmp_path / "gw.yaml"
    path.write_text(yaml.safe_dump(_config(up, database_url)))
    started = []
    try:
        for _ in range(2):
            gw = GatewayProcess(path, tmp_path)
            gw.env["MOERUN_MASTER_KEY"] = MASTER
            started.append(gw.start())
        yield started[0], started[1], database_url
    finally:
        for gw in started:
            gw.stop()
        up.stop()


def test_key_generated_on_one_replica_works_on_the_other(
    replicas: tuple[GatewayProcess, GatewayProcess, str],
) -> None:
    a, b, database_url = replicas
    with _admin(a.url) as admin:
        r = admin.post(
            "/key/generate",
            json={
                "key_alias": "team-eu",
                "models": [MODEL],
                "max_budget": 5.0,
                "budget_duration": "30d",
                "rpm_limit": 1000,
                "metadata": {"policy": {"jurisdictions": ["EU"]}, "team": "eu"},
            },
        )
    assert r.status_code == 200, r.text
    out = r.json()
    key = out["key"]
    assert key.startswith("sk-") and len(key) > 30
    assert out["token"] == hashlib.sha256(key.encode()).hexdigest()
    # The self-hosted backend has no known jurisdiction, so an EU-only key has no backend:
    # the policy from metadata.policy is applied (403, not 200).
    elapsed_s = _until(lambda: _chat(b.url, key).status_code != 401, PROPAGATION_S)
    assert elapsed_s < PROPAGATION_S
    assert _chat(b.url, key).json()["error"]["code"] == "no_compliant_backend"

    with _admin(b.url) as admin:
        r = admin.post("/key/generate", json={"key_alias": "team-any", "models": [MODEL]})
        key2 = r.json()["key"]
        assert _chat(b.url, key2).status_code == 200  # at once on the replica that wrote it
        elapsed_s = _until(lambda: _chat(a.url, key2).status_code == 200, PROPAGATION_S)
        assert elapsed_s < PROPAGATION_S
        # Models outside its list are refused on both replicas.
        for gw in (a, b):
            refused = _chat(gw.url, key2, OTHER)
            assert refused.status_code == 403
            assert refused.json()["error"]["code"] == "model_not_allowed"
        # The OpenAI SDK sees the key's models only.
        client = openai.OpenAI(base_url=a.url + "/v1", api_key=key2, max_retries=0)
        assert [m.id for m in client.models.list().data] == [MODEL]
        # YAML keys keep working, on every model.
        assert _chat(a.url, STATIC, OTHER).status_code == 200
        # Info and list (from the other replica), with the spend of its two answered requests
        # so far: each 12 prompt tokens (8 cached, at the input price) at $1/M, 8 output at $2/M.
        info = admin.get("/key/info", params={"key": key2}).json()
        assert info["key"] == hashlib.sha256(key2.encode()).hexdigest()
        assert info["info"]["key_alias"] == "team-any"
        assert info["info"]["models"] == [MODEL]
        assert info["info"]["spend"] == pytest.approx(2 * (12 * 1.0 + 8 * 2.0) / 1e6)
        listed = admin.get("/key/list").json()
        assert set(listed["keys"]) == {hashlib.sha256(k.encode()).hexdigest() for k in (key, key2)}
        assert listed["total_count"] == 2
        # Deleted on b: refused on b at once, and on a within 2 s.
        r = admin.post("/key/delete", json={"keys": [key2]})
        assert r.json()["deleted_keys"] == [hashlib.sha256(key2.encode()).hexdigest()]
    assert _chat(b.url, key2).status_code == 401
    elapsed_s = _until(lambda: _chat(a.url, key2).status_code == 401, PROPAGATION_S)
    assert elapsed_s < PROPAGATION_S
    # Deleting by alias works as well.
    with _admin(a.url) as admin:
        assert admin.post("/key/delete", json={"key_aliases": ["team-eu"]}).status_code == 200
        assert admin.get("/key/list").json()["total_count"] == 0

    # The database holds digests only: no stored value contains a key.
    engine = create_engine(database_url)
    with engine.connect() as conn:
        admin_rows = conn.execute(text("SELECT * FROM api_keys")).all()
        ledger_rows = conn.execute(text("SELECT * FROM usage_records")).all()
    engine.dispose()
    assert admin_rows == []  # both deleted
    dumped = repr(ledger_rows)
    for secret in (key, key2, MASTER, STATIC):
        assert secret not in dumped
    if database_url.startswith("sqlite"):
        db_file = Path(database_url.removeprefix("sqlite:///"))
        # The database, its WAL, the ledger's spool, the config and the gateways' logs.
        raw = b"".join(p.read_bytes() for p in db_file.parent.rglob("*") if p.is_file())
        for secret in (key, key2, MASTER):
            assert secret.encode() not in raw


def test_stored_row_is_a_hash(sqlite_url: str, upstream: Any, gateway: Any) -> None:
    gw: GatewayServer = gateway(_config(upstream(), sqlite_url), {"MOERUN_MASTER_KEY": MASTER})
    with _admin(gw.url) as admin:
        key = admin.post("/key/generate", json={"models": [OTHER]}).json()["key"]
    engine = create_engine(sqlite_url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM api_keys")).mappings().all()
    engine.dispose()
    assert len(rows) == 1
    digest = hashlib.sha256(key.encode()).hexdigest()
    assert rows[0]["key_sha256"] == digest
    assert rows[0]["key_name"] == f"key-{digest[:12]}"
    assert all(key not in str(v) for v in rows[0].values())
    assert _chat(gw.url, key, OTHER).status_code == 200
    assert _chat(gw.url, key, MODEL).status_code == 403


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"models": ["no-such-model"]}, "models"),
        ({"max_budget": -1}, "max_budget"),
        ({"max_budget": "10"}, "max_budget"),
        ({"rpm_limit": 0}, "rpm_limit"),
        ({"tpm_limit": 1.5}, "tpm_limit"),
        ({"budget_duration": "90d"}, "budget_duration"),
        ({"metadata": {"policy": {"jurisdictions": ["Europe"]}}}, "metadata"),
        ({"metadata": {"policy": {"colour": "blue"}}}, "metadata"),
        ({"key_alias": "static"}, "key_alias"),
        ({"duration": "30d"}, None),  # LiteLLM's key expiry: not supported, so refused
    ],
)
def test_generate_refuses_bad_fields(
    body: dict[str, Any], param: str | None, sqlite_url: str, upstream: Any, gateway: Any
) -> None:
    gw: GatewayServer = gateway(_config(upstream(), sqlite_url), {"MOERUN_MASTER_KEY": MASTER})
    with _admin(gw.url) as admin:
        r = admin.post("/key/generate", json=body)
        assert r.status_code == 400, r.text
        assert r.json()["error"]["param"] == param
        assert admin.get("/key/list").json()["total_count"] == 0


def test_key_routes_need_the_master_key(sqlite_url: str, upstream: Any, gateway: Any) -> None:
    up = upstream()
    gw: GatewayServer = gateway(_config(up, sqlite_url), {"MOERUN_MASTER_KEY": MASTER})
    for auth in ({}, {"authorization": f"Bearer {STATIC}"}, {"authorization": "Bearer x"}):
        r = httpx.post(gw.url + "/key/generate", json={}, headers=auth)
        assert r.status_code == 401
        assert httpx.get(gw.url + "/key/list", headers=auth).status_code == 401
    # The master key is not an API key for completions.
    assert _chat(gw.url, MASTER).status_code == 401
    off: GatewayServer = gateway(_config(up, sqlite_url.replace("usage", "off")))
    r = httpx.post(off.url + "/key/generate", json={}, headers={"authorization": "Bearer x"})
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "key_management_disabled"


def test_live_key_limits_and_budget_apply(sqlite_url: str, upstream: Any, gateway: Any) -> None:
    gw: GatewayServer = gateway(_config(upstream(), sqlite_url), {"MOERUN_MASTER_KEY": MASTER})
    with _admin(gw.url) as admin:
        limited = admin.post("/key/generate", json={"rpm_limit": 2}).json()["key"]
        # One request costs 28e-6 dollars here (see above): the budget holds one.
        budget = admin.post(
            "/key/generate", json={"max_budget": 30e-6, "budget_duration": "1d"}
        ).json()["key"]
    assert [_chat(gw.url, limited).status_code for _ in range(3)] == [200, 200, 429]
    assert _chat(gw.url, budget).status_code == 200
    refused = _chat(gw.url, budget)
    assert refused.status_code == 200 or refused.json()["error"]["code"] == "insufficient_quota"
    third = _chat(gw.url, budget)
    assert third.status_code == 429 and third.json()["error"]["code"] == "insufficient_quota"
