"""Factories for gateway tests: configs, keys, a gateway server in a thread."""

from __future__ import annotations

import hashlib
from typing import Any

import openai
import yaml

from moerun.serve.gateway import GatewayApp, parse_config
from tests.fixtures.servers import UvicornThread
from tests.fixtures.upstream import UpstreamServer

MODEL = "glm-5.1"


def key_entry(name: str, secret: str, **fields: Any) -> dict[str, Any]:
    """A keys[] entry for a secret."""
    return {"name": name, "key_sha256": hashlib.sha256(secret.encode()).hexdigest(), **fields}


def backend_entry(name: str, upstream: UpstreamServer, **fields: Any) -> dict[str, Any]:
    """A self-hosted backends[] entry for a fake upstream."""
    entry: dict[str, Any] = {
        "name": name,
        "kind": "self-hosted",
        "base_url": upstream.url + "/v1",
        "model": f"zai-org/GLM-5.1-FP8-{name}",
    }
    entry.update(fields)
    return entry


def make_config(backends: list[dict[str, Any]], database_url: str, **fields: Any) -> dict[str, Any]:
    """A gateway config dict serving MODEL from every backend given."""
    cfg: dict[str, Any] = {
        "backends": backends,
        "models": {MODEL: [b["name"] for b in backends]},
        "database_url": database_url,
        "server": {"access_log": False},
        "retries": {"max_attempts": 3, "backoff_base_s": 0.01, "backoff_cap_s": 0.05},
    }
    cfg.update(fields)
    return cfg


class GatewayServer(UvicornThread):
    """The gateway app served by uvicorn in a thread."""

    def __init__(self, config: dict[str, Any], env: dict[str, str] | None = None) -> None:
        self.app = GatewayApp(parse_config(yaml.safe_dump(config), env or {}))
        super().__init__(self.app)

    def client(self, api_key: str = "none", **kw: Any) -> openai.OpenAI:
        """An OpenAI SDK client for this gateway (no SDK retries)."""
        return openai.OpenAI(base_url=self.url + "/v1", api_key=api_key, max_retries=0, **kw)
