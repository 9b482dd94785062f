"""Bad input and backend errors: the right status, always an OpenAI-shaped error."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest

from tests.fixtures.upstream import UpstreamServer
from tests.serve.factories import MODEL, GatewayServer, backend_entry, key_entry, make_config

SECRET = "sk-test-eu-app"


@pytest.fixture
def gw(
    upstream: Callable[..., UpstreamServer],
    gateway: Callable[..., GatewayServer],
    sqlite_url: str,
) -> GatewayServer:
    be = upstream(name="a")
    cfg = make_config(
        [backend_entry("a", be, jurisdiction="DE")],
        sqlite_url,
        keys=[
            key_entry("app", SECRET),
            key_entry("us-only", "sk-us", policy={"jurisdictions": ["US"]}),
        ],
        server={"access_log": False, "max_body_bytes": 2048},
    )
    return gateway(cfg)


def _error(r: httpx.Response) -> dict[str, Any]:
    body = r.json()
    assert set(body) == {"error"}, body
    err: dict[str, Any] = body["error"]
    assert isinstance(err["message"], str) and isinstance(err["type"], str)
    assert isinstance(err["code"], str)
    return err


def _post(
    gw: GatewayServer, content: bytes | None = None, key: str | None = SECRET, **kw: Any
) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if key is not None:
        headers["authorization"] = f"Bearer {key}"
    return httpx.post(gw.url + "/v1/chat/completions", content=content, headers=headers, **kw)


def test_malformed_json_is_400(gw: GatewayServer) -> None:
    r = _post(gw, b'{"model": "glm-5.1", "messages": [')
    assert r.status_code == 400 and _error(r)["code"] == "invalid_json"
    r = _post(gw, b"[1, 2]")
    assert r.status_code == 400 and _error(r)["code"] == "invalid_json"
    r = _post(gw, b'{"messages": []}')
    assert r.status_code == 400 and _error(r)["param"] == "model"
    r = _post(gw, b'{"model": "glm-5.1", "messages": [], "stream": "0"}')
    assert r.status_code == 400 and _error(r)["param"] == "stream"
    r = _post(gw, b'{"model": "glm-5.1", "messages": [], "stream": true, "stream_options": 1}')
    assert r.status_code == 400 and _error(r)["param"] == "stream_options"


def test_oversized_body_is_413(gw: GatewayServer) -> None:
    big = b'{"model": "glm-5.1", "messages": [{"role": "user", "content": "' + b"x" * 5000 + b'"}]}'
    r = _post(gw, big)
    assert r.status_code == 413 and _error(r)["code"] == "request_too_large"

    def chunks() -> Any:  # no content-length: the limit holds while streaming the body in
        yield big[:1000]
        yield big[1000:]

    r = _post(gw, chunks())  # type: ignore[arg-type]
    assert r.status_code == 413


def test_missing_or_wrong_key_is_401(gw: GatewayServer) -> None:
    body = b'{"model": "glm-5.1", "messages": [{"role": "user", "content": "hi"}]}'
    for key in (None, "sk-wrong"):
        r = _post(gw, body, key=key)
        assert r.status_code == 401 and _error(r)["code"] == "invalid_api_key"
    r = httpx.post(gw.url + "/v1/chat/completions", content=body, headers={"authorization": SECRET})
    assert r.status_code == 401  # not a Bearer token
    with gw.client("sk-wrong") as client, pytest.raises(openai.AuthenticationError):
        client.models.list()


def test_unknown_model_is_404_and_policy_refusal_403(gw: GatewayServer) -> None:
    with gw.client(SECRET) as client, pytest.raises(openai.NotFoundError) as exc:
        client.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "hi"}])
    assert exc.value.code == "model_not_found"
    r = _post(gw, b'{"model": "glm-5.1", "messages": []}', key="sk-us")
    assert r.status_code == 403 and _error(r)["code"] == "no_compliant_backend"
    with gw.client("sk-us") as client:
        assert list(client.models.list()) == []


def test_unknown_route_and_method(gw: GatewayServer) -> None:
    r = httpx.get(gw.url + "/v1/embeddings")
    assert r.status_code == 404 and _error(r)
    r = httpx.get(gw.url + "/v1/chat/completions")
    assert r.status_code == 405 and _error(r)


@pytest.mark.parametrize("style", ["openai", "vllm", "flat", "detail", "text"])
def test_backend_error_envelopes_are_normalised(
    style: str,
    upstream: Callable[..., UpstreamServer],
    gateway: Callable[..., GatewayServer],
    sqlite_url: str,
) -> None:
    be = upstream(name="a", error_style=style)
    gw = gateway(make_config([backend_entry("a", be)], sqlite_url))
    body = {"model": MODEL, "messages": [{"role": "user", "content": "__status_400"}]}
    r = httpx.post(gw.url + "/v1/chat/completions", json=body)
    assert r.status_code == 400
    err = _error(r)
    assert "mock error 400" in err["message"] and err["type"] == "invalid_request_error"
    assert be.behaviour.stats["requests"] == 1  # a 400 is the request's fault: no retry


def test_backend_429_keeps_status_and_retry_after(
    upstream: Callable[..., UpstreamServer],
    gateway: Callable[..., GatewayServer],
    sqlite_url: str,
) -> None:
    be = upstream(name="a")
    gw = gateway(make_config([backend_entry("a", be)], sqlite_url))
    with gw.client() as client, pytest.raises(openai.RateLimitError) as exc:
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "__status_429"}]
        )
    assert exc.value.response.headers["retry-after"]
    assert be.behaviour.stats["requests"] == 3  # retried with backoff, max_attempts=3
