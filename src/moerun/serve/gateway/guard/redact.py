"""Upstream error texts made safe to show a client: no credentials, no internal addresses.

Providers and engines echo what they were sent (a rejected API key, a bearer header) and
where they run (a pod IP, an internal URL); none of that may reach the gateway's clients.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

SECRET = "[redacted]"
ADDRESS = "[address]"

_SECRETS = (
    # Authorization header values: "Bearer abc.def", "Basic dXNlcjpwYXNz"
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), rf"\1 {SECRET}"),
    # key: value / key=value for names that hold secrets (JSON, query strings, headers)
    (
        re.compile(
            r"(?i)\b((?:x-)?api[_-]?key|access[_-]?token|refresh[_-]?token|secret|password|"
            r"passwd|token|authorization|auth)(\"?\s*[:=]\s*\"?)(?!\[redacted\])[^\s\"',;&}]+"
        ),
        rf"\1\2{SECRET}",
    ),
    # Vendor key shapes: sk-..., sk-proj-..., AKIA..., long opaque tokens
    (re.compile(r"\b(?:sk|pk|rk|ak|key)[-_][A-Za-z0-9_-]{8,}"), SECRET),
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), SECRET),
    (re.compile(r"\b[A-Za-z0-9_-]{40,}\b"), SECRET),
)
_ADDRESSES = (
    (re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>]+"), ADDRESS),  # any URL
    (re.compile(r"\[[0-9a-fA-F:.]+\](?::\d+)?"), ADDRESS),  # [IPv6]:port
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?\b"), ADDRESS),  # IPv4[:port]
    (re.compile(r"\b(?:[0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}\b"), ADDRESS),  # full IPv6
    (re.compile(r"(?<![\w:])[0-9a-fA-F]{0,4}(?::[0-9a-fA-F]{1,4})*::[0-9a-fA-F:]*"), ADDRESS),
    (re.compile(r"\b[A-Za-z][A-Za-z0-9-]*(?:\.[A-Za-z0-9-]+)*:\d{2,5}\b"), ADDRESS),  # host:port
    (
        re.compile(
            r"\b[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\."
            r"(?:svc|cluster\.local|internal|local|localdomain|lan|corp|intranet)\b"
        ),
        ADDRESS,
    ),
    (re.compile(r"(?i)\blocalhost\b"), ADDRESS),
)


def redact(text: str, known: Iterable[str] = ()) -> str:
    """The text with credentials (patterns and the `known` secrets) and addresses replaced."""
    for secret in known:
        if secret:
            text = text.replace(secret, SECRET)
    for pattern, repl in _SECRETS:
        text = pattern.sub(repl, text)
    for pattern, repl in _ADDRESSES:
        text = pattern.sub(repl, text)
    return text
