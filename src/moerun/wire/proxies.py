"""Which HTTP proxy, if any, a request to a URL goes through: HTTPS_PROXY / HTTP_PROXY /
NO_PROXY as curl and Go read them (upper case first, then lower case).

NO_PROXY is a comma list of host names (`example.com` also covers its subdomains; a leading
`.` or `*.` is allowed), IP addresses or CIDR blocks, each optionally with `:port`; `*` turns
proxies off. As in Go's net/http, `localhost` and loopback addresses are never proxied.
Only `http://` proxies are supported (an `https://` target is tunnelled with CONNECT).
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from moerun.errors import ConfigError


@dataclass(frozen=True, slots=True)
class ProxyRoute:
    """An HTTP proxy: where it listens and the `Proxy-Authorization` value, if it needs one."""

    host: str
    port: int
    authorization: str | None = None

    @classmethod
    def from_url(cls, url: str) -> ProxyRoute:
        """Parse `http://[user:password@]host[:port]` (a bare `host:port` reads as http)."""
        parts = urlsplit(url if "://" in url else "http://" + url)
        if parts.scheme != "http" or not parts.hostname:
            raise ConfigError(
                f"proxy {url!r}: expected http://host:port (HTTPS proxies are not supported)"
            )
        auth = None
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            auth = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
        try:
            port = parts.port or 80
        except ValueError:
            raise ConfigError(f"proxy {url!r}: bad port") from None
        return cls(parts.hostname, port, auth)


def _env(env: Mapping[str, str], name: str) -> str:
    return (env.get(name.upper()) or env.get(name.lower()) or "").strip()


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bypassed(host: str, port: int, no_proxy: str) -> bool:
    """Whether NO_PROXY's value exempts host:port."""
    host = host.lower().strip("[]")
    for raw in no_proxy.split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        entry_port = None
        if entry.count(":") == 1 or (entry.startswith("[") and "]:" in entry):
            entry, _, port_text = entry.rpartition(":")
            if port_text.isdigit():
                entry_port = int(port_text)
        entry = entry.strip("[]")
        if entry_port is not None and entry_port != port:
            continue
        try:
            if ipaddress.ip_address(host) in ipaddress.ip_network(entry, strict=False):
                return True
            continue
        except ValueError:
            pass
        entry = entry.removeprefix("*").removeprefix(".")
        if host == entry or host.endswith("." + entry):
            return True
    return False


def proxy_for(url: str, env: Mapping[str, str]) -> ProxyRoute | None:
    """The proxy a request to `url` goes through under `env` (None: connect directly)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if not host or _is_loopback(host):
        return None
    tls = parts.scheme == "https"
    value = _env(env, "https_proxy" if tls else "http_proxy")
    if not value:
        return None
    port = parts.port or (443 if tls else 80)
    if bypassed(host, port, _env(env, "no_proxy")):
        return None
    return ProxyRoute.from_url(value)
