"""Policy is proven, not assumed: over random policies, backend facts and failures (5xx, dead
backends), no request ever reaches a backend outside its key's policy, failover included.

The oracle below is written independently of moerun.core.market.policy.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moerun.core.market.providers import EU_MEMBER_CODES
from moerun.serve.gateway import GatewayApp, parse_config
from tests.fixtures.upstream import Behaviour, UpstreamServer, free_port
from tests.serve.factories import MODEL

COUNTRIES = ["US", "DE", "FR", "SG", "GB", "EU"]
CERTS = ["soc2-type2", "iso27001", "hipaa-baa"]
NUM_LIVE = 4


@pytest.fixture(scope="module")
def live() -> Iterator[list[UpstreamServer]]:
    servers = [UpstreamServer(Behaviour(name=f"b{i}")).start() for i in range(NUM_LIVE)]
    yield servers
    for s in servers:
        s.stop()


backend_facts = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(["self-hosted", "managed"]),
        "jurisdiction": st.sampled_from([None, *COUNTRIES]),
        "certifications": st.one_of(st.none(), st.lists(st.sampled_from(CERTS), unique=True)),
        "zero_retention": st.sampled_from([None, True, False]),
    }
)
key_policy = st.fixed_dictionaries(
    {
        "jurisdictions": st.lists(st.sampled_from(["EU", "US", "DE", "SG"]), unique=True),
        "certifications": st.lists(st.sampled_from(CERTS), unique=True, max_size=2),
        "zero_retention": st.booleans(),
        "self_hosted_only": st.booleans(),
    }
)


def oracle(policy: dict[str, Any], facts: dict[str, Any]) -> bool:
    """Whether a backend with these declared facts may receive this policy's traffic."""
    if policy["self_hosted_only"] and facts["kind"] != "self-hosted":
        return False
    allowed = policy["jurisdictions"]
    if allowed:
        j = facts["jurisdiction"]
        if j is None:
            return False
        if j not in allowed and not ("EU" in allowed and j in EU_MEMBER_CODES):
            return False
    if any(c not in (facts["certifications"] or []) for c in policy["certifications"]):
        return False
    return not (policy["zero_retention"] and facts["zero_retention"] is not True)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    facts=st.lists(backend_facts, min_size=NUM_LIVE + 1, max_size=NUM_LIVE + 1),
    modes=st.lists(st.sampled_from(["ok", "ok", "fail500"]), min_size=NUM_LIVE, max_size=NUM_LIVE),
    policies=st.lists(key_policy, min_size=1, max_size=3),
    stream=st.booleans(),
)
def test_no_request_reaches_a_backend_outside_its_policy(
    live: list[UpstreamServer],
    facts: list[dict[str, Any]],
    modes: list[str],
    policies: list[dict[str, Any]],
    stream: bool,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    urls = [s.url for s in live] + [f"http://127.0.0.1:{free_port()}"]  # the last one is dead
    backends = []
    for i, (f, url) in enumerate(zip(facts, urls, strict=True)):
        entry = {"name": f"b{i}", "base_url": url + "/v1", "model": "m", "health_check": False}
        entry |= {k: v for k, v in f.items() if v is not None}
        entry |= {"input_usd_per_mtok": 1.0, "output_usd_per_mtok": 2.0}
        backends.append(entry)
    keys = [
        {"name": f"k{i}", "key_sha256": hashlib.sha256(f"sk-{i}".encode()).hexdigest(), "policy": p}
        for i, p in enumerate(policies)
    ]
    db = tmp_path_factory.mktemp("policy") / "usage.db"
    cfg = {
        "backends": backends,
        "models": {MODEL: [b["name"] for b in backends]},
        "keys": keys,
        "database_url": f"sqlite:///{db}",
        "server": {"access_log": False},
        "retries": {"max_attempts": 6, "backoff_base_s": 0.0, "backoff_cap_s": 0.0},
        "timeouts": {"connect_s": 0.5},
    }
    for server, mode in zip(live, modes, strict=True):
        server.behaviour.mode = mode
        server.behaviour.stats["bodies"].clear()
    statuses = asyncio.run(_drive(cfg, len(policies), stream))
    for server, f in zip(live, facts[:NUM_LIVE], strict=True):
        for body in server.behaviour.stats["bodies"]:
            key = int(body["user"][1:])
            assert oracle(policies[key], f), (policies[key], f)
    # And it is not vacuous: a key with a compliant healthy backend is always served.
    for i, policy in enumerate(policies):
        ok = [oracle(policy, f) and m == "ok" for f, m in zip(facts, modes, strict=False)]
        if any(ok):
            assert statuses[i] == [200] * 3, (statuses[i], policy, facts, modes)
        elif not any(oracle(policy, f) for f in facts):
            assert statuses[i] == [403] * 3


async def _drive(cfg: dict[str, Any], num_keys: int, stream: bool) -> list[list[int]]:
    app = GatewayApp(parse_config(yaml.safe_dump(cfg), {}))
    await app.startup()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            statuses: list[list[int]] = []
            for i in range(num_keys):
                statuses.append([])
                for n in range(3):
                    body = {
                        "model": MODEL,
                        "user": f"k{i}",  # marks the key in what the backend receives
                        "messages": [{"role": "user", "content": f"hello {n} " * 20}],
                        "stream": stream,
                    }
                    r = await client.post(
                        "/v1/chat/completions",
                        json=body,
                        headers={"authorization": f"Bearer sk-{i}"},
                    )
                    assert r.status_code in (200, 403, 500, 502), r.text
                    statuses[i].append(r.status_code)
            return statuses
    finally:
        await app.shutdown()
