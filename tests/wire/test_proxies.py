"""Which requests go through which proxy: HTTPS_PROXY / HTTP_PROXY / NO_PROXY."""

from __future__ import annotations

import pytest

from moerun.errors import ConfigError
from moerun.wire.proxies import ProxyRoute, bypassed, proxy_for

ENV = {"HTTPS_PROXY": "http://px.corp:3128", "http_proxy": "http://user:p%40ss@px.corp"}


def test_scheme_picks_the_variable_and_credentials_become_basic_auth() -> None:
    assert proxy_for("https://api.example.com/v1", ENV) == ProxyRoute("px.corp", 3128, None)
    # user "user", password "p@ss": base64("user:p@ss")
    assert proxy_for("http://api.example.com/v1", ENV) == ProxyRoute(
        "px.corp", 80, "Basic dXNlcjpwQHNz"
    )
    assert proxy_for("https://api.example.com", {}) is None
    assert proxy_for("https://api.example.com", {"HTTP_PROXY": "http://px:1"}) is None
    # upper case wins over lower case, as curl and Go read them
    both = {"HTTPS_PROXY": "http://upper:1", "https_proxy": "http://lower:2"}
    assert proxy_for("https://a.example", both) == ProxyRoute("upper", 1)
    assert proxy_for("https://a.example", {"HTTPS_PROXY": "px:8080"}) == ProxyRoute("px", 8080)


def test_loopback_is_never_proxied() -> None:
    for url in (
        "http://127.0.0.1:8000",
        "http://localhost:1",
        "https://[::1]:9",
        "http://127.9.9.9",
    ):
        assert proxy_for(url, {"HTTP_PROXY": "http://px:1", "HTTPS_PROXY": "http://px:1"}) is None


@pytest.mark.parametrize(
    ("host", "port", "no_proxy", "expected"),
    [
        ("api.example.com", 443, "example.com", True),
        ("api.example.com", 443, ".example.com", True),
        ("api.example.com", 443, "*.example.com", True),
        ("example.com", 443, "example.com", True),
        ("badexample.com", 443, "example.com", False),
        ("api.example.com", 443, "other.org, example.com:443", True),
        ("api.example.com", 8443, "example.com:443", False),
        ("10.1.2.3", 80, "10.0.0.0/8", True),
        ("11.1.2.3", 80, "10.0.0.0/8", False),
        ("10.1.2.3", 80, "10.1.2.3", True),
        ("anything.io", 1, "*", True),
        ("anything.io", 1, "", False),
        ("::2", 1, "[::2]:1", True),
    ],
)
def test_no_proxy_rules(host: str, port: int, no_proxy: str, expected: bool) -> None:
    assert bypassed(host, port, no_proxy) is expected


def test_no_proxy_applies_to_proxy_for() -> None:
    env = {**ENV, "NO_PROXY": "internal.corp"}
    assert proxy_for("https://llm.internal.corp/v1", env) is None
    assert proxy_for("https://api.example.com/v1", env) == ProxyRoute("px.corp", 3128, None)


def test_unusable_proxy_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="HTTPS proxies are not supported"):
        proxy_for("https://a.example", {"HTTPS_PROXY": "https://px:443"})
    with pytest.raises(ConfigError, match="bad port"):
        proxy_for("https://a.example", {"HTTPS_PROXY": "http://px:notaport"})
