"""A schema-based fuzz run (schemathesis) against the gateway's OpenAPI document: no 5xx,
and every error is OpenAI-shaped."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fixtures.upstream import UpstreamServer
from tests.serve.factories import GatewayServer, backend_entry, key_entry, make_config


def test_fuzz_finds_no_server_error(
    upstream: Callable[..., UpstreamServer],
    gateway: Callable[..., GatewayServer],
    sqlite_url: str,
) -> None:
    be = upstream(name="a", num_chunks=2)
    cfg = make_config(
        [backend_entry("a", be)],
        sqlite_url,
        keys=[key_entry("fuzz", "sk-fuzz")],
        server={"access_log": False, "max_body_bytes": 65536},
    )
    gw = gateway(cfg)
    doc = httpx.get(gw.url + "/openapi.json").json()
    schema = schemathesis.openapi.from_dict(doc)
    operations = [result.ok() for result in schema.get_all_operations()]
    strategies = [
        op.as_strategy(generation_mode=mode)
        for op in operations
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
    ]
    seen: set[int] = set()

    @settings(
        max_examples=80,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=st.one_of(*strategies), auth=st.sampled_from(["sk-fuzz", "sk-wrong", None]))
    def run(case: schemathesis.Case, auth: str | None) -> None:
        headers = {"authorization": f"Bearer {auth}"} if auth else {}
        response = case.call(base_url=gw.url, headers=headers, timeout=10)
        seen.add(response.status_code)
        assert response.status_code < 500, (case.body, response.text)
        if response.status_code >= 400:
            error = response.json()["error"]
            assert isinstance(error["message"], str) and isinstance(error["code"], str)

    run()
    assert 200 in seen and {401, 400} & seen
