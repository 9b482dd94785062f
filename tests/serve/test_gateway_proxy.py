"""The gateway reaches a backend through the HTTP proxy its environment names (HTTP_PROXY),
but never for a loopback backend. The proxy is a real one on 127.0.0.1 (tests/wire)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from tests.bench.conftest import ThreadServer
from tests.fixtures.upstream import UpstreamServer
from tests.serve.factories import MODEL, GatewayServer, make_config
from tests.wire.test_client import ForwardProxy

HI = [{"role": "user", "content": "hi"}]


def test_backend_through_the_environment_proxy(
    upstream: Callable[..., UpstreamServer],
    gateway: Callable[..., GatewayServer],
    sqlite_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    backend = upstream(name="a")
    proxy = ForwardProxy({"backend.test": "127.0.0.1"})
    with ThreadServer(lambda: asyncio.start_server(proxy.handle, "127.0.0.1", 0)) as px:
        monkeypatch.setenv("HTTP_PROXY", f"http://gw:pw@127.0.0.1:{px.port}")
        # the test's own SDK client reads these too: it talks to the gateway direct
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        monkeypatch.delenv("no_proxy", raising=False)
        entry = {
            "name": "a",
            "kind": "self-hosted",
            "base_url": f"http://backend.test:{backend.port}/v1",  # only the proxy resolves it
            "model": "m",
            "health_check": False,
        }
        gw = gateway(make_config([entry], sqlite_url))
        with gw.client() as client:
            answer = client.chat.completions.create(model=MODEL, messages=HI)
            chunks = list(client.chat.completions.create(model=MODEL, messages=HI, stream=True))
        gw.stop()
        proxy.wait_idle()
    assert answer.choices[0].message.content == "hello from a"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    target = f"POST http://backend.test:{backend.port}/v1/chat/completions HTTP/1.1"
    assert proxy.lines and set(proxy.lines) == {target}
    assert set(proxy.auth) == {"Basic Z3c6cHc="}  # base64("gw:pw")


def test_a_loopback_backend_is_never_proxied(
    upstream: Callable[..., UpstreamServer],
    gateway: Callable[..., GatewayServer],
    sqlite_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    backend = upstream(name="a")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # for the test's own SDK client
    monkeypatch.delenv("no_proxy", raising=False)
    entry = {"name": "a", "kind": "self-hosted", "base_url": f"http://localhost:{backend.port}/v1"}
    gw = gateway(make_config([entry], sqlite_url))
    with gw.client() as client:
        answer = client.chat.completions.create(model=MODEL, messages=HI)
    assert answer.choices[0].message.content == "hello from a"
