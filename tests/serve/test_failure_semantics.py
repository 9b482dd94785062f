"""Failure semantics: a misconfigured backend (401/403/404) is failed over and marked, upstream
error texts reach clients without credentials or internal addresses, and requests providers
would refuse are refused by the gateway with OpenAI-shaped 400s."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from moerun.serve.gateway.guard.redact import redact
from moerun.serve.gateway.schema import TimeoutsEntry
from tests.fixtures.servers import UvicornThread as ThreadServer
from tests.fixtures.upstream import UpstreamServer, free_port
from tests.serve.factories import MODEL, GatewayServer, backend_entry, make_config

LEAKED_KEY = "sk-live-0123456789abcdefXYZ"
CONFIGURED_KEY = "plainsecretvalue42"  # the backend's own key, in no known key shape
ECHO = (
    f"Incorrect API key provided: {LEAKED_KEY}. Header was 'Authorization: Bearer "
    f"{LEAKED_KEY}', key {CONFIGURED_KEY}; served by 10.0.3.7:8000 "
    "(http://vllm-0.vllm.svc.cluster.local:8000/v1)"
)


class Refusing(ThreadServer):
    """A backend that answers every request with one status and a body that echoes secrets."""

    def __init__(self, status: int) -> None:
        self.hits = 0

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] == "lifespan":
                while True:
                    msg = await receive()
                    await send({"type": msg["type"] + ".complete"})
                    if msg["type"] == "lifespan.shutdown":
                        return
            while (await receive()).get("more_body"):
                pass
            if scope["path"].endswith("completions"):
                self.hits += 1
            body = json.dumps({"error": {"message": ECHO, "type": "auth", "code": "bad_key"}})
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body.encode()})

        super().__init__(app)


def _chat(gw: GatewayServer, **body: Any) -> httpx.Response:
    req = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], **body}
    return httpx.post(gw.url + "/v1/chat/completions", json=req, timeout=10)


def _assert_clean(text: str) -> None:
    for leak in (LEAKED_KEY, CONFIGURED_KEY, "10.0.3.7", "svc.cluster.local", "127.0.0.1"):
        assert leak not in text, (leak, text)


@pytest.mark.parametrize("status", [401, 403, 404])
def test_misconfigured_backend_fails_over_and_is_marked(
    status: int,
    upstream: Callable[..., UpstreamServer],
    gateway: Callable[..., GatewayServer],
    sqlite_url: str,
) -> None:
    bad = Refusing(status).start()
    try:
        good = upstream(name="good")
        cfg = make_config(
            [
                backend_entry("bad", bad, health_check=False),  # type: ignore[arg-type]
                backend_entry(
                    "good",
                    good,
                    kind="managed",
                    input_usd_per_mtok=1.0,
                    output_usd_per_mtok=1.0,
                ),
            ],
            sqlite_url,
        )
        gw = gateway(cfg)
        # Self-hosted is tried first while it keeps up, so "bad" is asked first.
        for _ in range(4):
            r = _chat(gw)
            assert r.status_code == 200, r.text
            assert r.headers["x-moerun-backend"] == "good"
        assert bad.hits >= 1
        health = httpx.get(gw.url + "/health").json()
        assert health["backends"]["bad"]["misconfigured_status"] == status
        assert health["backends"]["good"]["misconfigured_status"] is None
        metrics = httpx.get(gw.url + "/metrics").text
        assert f'backend="bad",kind="upstream_{status}"' in metrics
    finally:
        bad.stop()


def test_only_backend_misconfigured_is_a_clean_502(
    gateway: Callable[..., GatewayServer], sqlite_url: str
) -> None:
    bad = Refusing(401).start()
    try:
        gw = gateway(make_config([backend_entry("bad", bad)], sqlite_url))  # type: ignore[arg-type]
        r = _chat(gw)
        assert r.status_code == 502  # not 401: the client's own key is fine
        err = r.json()["error"]
        assert err["code"] == "upstream_misconfigured" and err["type"] == "server_error"
        _assert_clean(r.text)
    finally:
        bad.stop()


def test_client_errors_are_redacted(gateway: Callable[..., GatewayServer], sqlite_url: str) -> None:
    bad = Refusing(400).start()
    try:
        entry = backend_entry("bad", bad, api_key_env="BAD_KEY", health_check=False)  # type: ignore[arg-type]
        gw = gateway(make_config([entry], sqlite_url), {"BAD_KEY": CONFIGURED_KEY})
        r = _chat(gw)
        assert r.status_code == 400
        err = r.json()["error"]
        _assert_clean(r.text)
        assert err["message"].startswith("Incorrect API key provided: [redacted]")
        assert "[address]" in err["message"]
        assert bad.hits == 1  # a 400 is still the request's fault: no failover
    finally:
        bad.stop()


def test_unreachable_backend_error_has_no_address(
    gateway: Callable[..., GatewayServer], sqlite_url: str
) -> None:
    entry = {
        "name": "gone",
        "kind": "self-hosted",
        "base_url": f"http://127.0.0.1:{free_port()}/v1",
        "health_check": False,
    }
    gw = gateway(make_config([entry], sqlite_url))
    r = _chat(gw)
    assert r.status_code == 502
    _assert_clean(r.text)
    assert f":{entry['base_url'].split(':')[2]}" not in r.text


BAD_FIELDS = [
    ({"messages": None}, "messages"),
    ({"messages": []}, "messages"),
    ({"messages": "hi"}, "messages"),
    ({"messages": [1]}, "messages[0]"),
    ({"messages": [{"content": "hi"}]}, "messages[0]"),
    ({"messages": [{"role": "user", "content": "a"}, {"role": "robot"}]}, "messages[1]"),
    ({"messages": [{"role": "user", "content": 5}]}, "messages[0]"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"max_tokens": -5}, "max_tokens"),
    ({"max_tokens": 1.5}, "max_tokens"),
    ({"max_tokens": "100"}, "max_tokens"),
    ({"max_tokens": True}, "max_tokens"),
    ({"max_completion_tokens": 0}, "max_completion_tokens"),
    ({"n": 0}, "n"),
    ({"temperature": "0.7"}, "temperature"),
    ({"top_p": [1]}, "top_p"),
    ({"presence_penalty": False}, "presence_penalty"),
    ({"frequency_penalty": {}}, "frequency_penalty"),
    ({"top_k": 1.5}, "top_k"),
    ({"seed": "1"}, "seed"),
]


def test_requests_providers_refuse_are_400(
    upstream: Callable[..., UpstreamServer],
    gateway: Callable[..., GatewayServer],
    sqlite_url: str,
) -> None:
    be = upstream(name="a")
    gw = gateway(make_config([backend_entry("a", be)], sqlite_url))
    for fields, param in BAD_FIELDS:
        r = _chat(gw, **fields)
        assert r.status_code == 400, (fields, r.text)
        err = r.json()["error"]
        assert err["type"] == "invalid_request_error" and err["param"] == param, fields
        assert isinstance(err["message"], str) and isinstance(err["code"], str)
    assert be.behaviour.stats["requests"] == 0  # none was sent upstream


def test_valid_edge_values_pass(
    upstream: Callable[..., UpstreamServer],
    gateway: Callable[..., GatewayServer],
    sqlite_url: str,
) -> None:
    be = upstream(name="a")
    gw = gateway(make_config([backend_entry("a", be)], sqlite_url))
    ok = {
        "max_tokens": 1,
        "temperature": 0,
        "top_p": 1.0,
        "seed": 7,
        "messages": [
            {"role": "developer", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "hi"}]},
            {"role": "assistant", "content": None, "tool_calls": []},
            {"role": "tool", "content": "42", "tool_call_id": "c1"},
            {"role": "user", "content": "hi"},
        ],
    }
    assert _chat(gw, **ok).status_code == 200
    r = httpx.post(gw.url + "/v1/completions", json={"model": MODEL, "prompt": [[1, 2, 3]]})
    assert r.status_code == 200
    r = httpx.post(gw.url + "/v1/completions", json={"model": MODEL, "prompt": {"x": 1}})
    assert r.status_code == 400 and r.json()["error"]["param"] == "prompt"


def test_non_streamed_timeout_default_is_at_most_300_s() -> None:
    assert TimeoutsEntry().total_s <= 300.0


def test_redact_keeps_ordinary_messages() -> None:
    for text in (
        "This model's maximum context length is 8192 tokens. However, you requested 9000.",
        "`max_tokens` must be <= 4096",
        "mock error 400 from a",
    ):
        assert redact(text) == text
    assert redact("token=abc123&x=1") == "token=[redacted]&x=1"
    assert redact("peer [fd00::1]:8000 reset") == "peer [address] reset"


def test_health_probe_marks_a_misconfigured_backend(
    gateway: Callable[..., GatewayServer], sqlite_url: str
) -> None:
    bad = Refusing(403).start()
    try:
        cfg = make_config([backend_entry("bad", bad)], sqlite_url)  # type: ignore[arg-type]
        cfg["health"] = {"interval_s": 0.05, "timeout_s": 1.0}
        gw = gateway(cfg)
        deadline = time.monotonic() + 5
        while True:
            state = httpx.get(gw.url + "/health").json()["backends"]["bad"]
            if state["misconfigured_status"] is not None or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert state["misconfigured_status"] == 403 and state["healthy"] is False
        assert bad.hits == 0  # probes only: no completion was sent
    finally:
        bad.stop()
