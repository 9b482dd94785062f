"""Fixtures for gateway tests: fake upstreams and gateways on 127.0.0.1, PostgreSQL, Redis."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.servers import UvicornThread
from tests.fixtures.services import pg_server, pg_url, redis_prefix  # noqa: F401
from tests.fixtures.upstream import Behaviour, UpstreamServer
from tests.serve.factories import GatewayServer


@pytest.fixture
def upstream() -> Iterator[Callable[..., UpstreamServer]]:
    """Start fake upstreams: `upstream(name="a", reasoning_field="reasoning")`."""
    started: list[UpstreamServer] = []

    def make(**behaviour: Any) -> UpstreamServer:
        server = UpstreamServer(Behaviour(**behaviour)).start()
        started.append(server)
        return server

    yield make
    _stop_all(started)


@pytest.fixture
def gateway() -> Iterator[Callable[..., GatewayServer]]:
    """Start gateways in threads: `gateway(config_dict, env)`."""
    started: list[GatewayServer] = []

    def make(config: dict[str, Any], env: dict[str, str] | None = None) -> GatewayServer:
        server = GatewayServer(config, env)
        server.start()
        started.append(server)
        return server

    yield make
    _stop_all(started)


def _stop_all(servers: Sequence[UvicornThread]) -> None:
    for server in servers:
        server.request_stop()
    for server in servers:
        server.join()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite ledger file."""
    return f"sqlite:///{tmp_path / 'usage.db'}"
