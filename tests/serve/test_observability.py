"""Prometheus metrics and structured access logs (no prompt contents)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import httpx
import pytest

from tests.fixtures.upstream import UpstreamServer
from tests.serve.factories import MODEL, GatewayServer, backend_entry, key_entry, make_config

SECRET_PROMPT = "my card number is 4111-1111"


def test_metrics_and_access_log(
    upstream: Callable[..., UpstreamServer],
    gateway: Callable[..., GatewayServer],
    sqlite_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    be = upstream(name="a")
    priced = {
        "input_usd_per_mtok": 2.0,
        "cached_input_usd_per_mtok": 0.5,
        "output_usd_per_mtok": 8.0,
    }
    cfg = make_config(
        [backend_entry("a", be, **priced)],
        sqlite_url,
        keys=[key_entry("app", "sk-app")],
        server={"access_log": True},
    )
    gw = gateway(cfg)
    caplog.set_level(logging.INFO, logger="moerun.gateway.access")
    with gw.client("sk-app") as client:
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": SECRET_PROMPT}]
        )
        list(
            client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": SECRET_PROMPT}], stream=True
            )
        )
    r = httpx.post(
        gw.url + "/v1/chat/completions",
        json={"model": MODEL, "messages": [{"role": "user", "content": "__status_400"}]},
        headers={"authorization": "Bearer sk-app"},
    )
    assert r.status_code == 400
    text = httpx.get(gw.url + "/metrics").text
    for line in (
        'moerun_gateway_requests_total{backend="a",key="app",model="glm-5.1",status="ok"} 2.0',
        'moerun_gateway_requests_total{backend="a",key="app",model="glm-5.1",status="error"} 1.0',
        'moerun_gateway_tokens_total{backend="a",key="app",kind="cached"} 16.0',
        'moerun_gateway_tokens_total{backend="a",key="app",kind="output"} 16.0',
        'moerun_gateway_backend_healthy{backend="a"} 1.0',
        'moerun_gateway_circuit_state{backend="a"} 0.0',
        'moerun_gateway_ttft_seconds_count{backend="a"} 1.0',
        'moerun_gateway_request_duration_seconds_count{backend="a"} 3.0',
    ):
        assert line in text, line
    # 2 requests x (4 uncached x $2 + 8 cached x $0.5 + 8 output x $8) per Mtok
    cost = next(v for v in text.splitlines() if v.startswith("moerun_gateway_cost_usd_total{"))
    assert float(cost.split()[-1]) == pytest.approx(2 * (8 + 4 + 64) / 1e6)
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name.endswith("access")]
    assert [(x["status"], x["stream"], x["http_status"]) for x in lines] == [
        ("ok", False, 200),
        ("ok", True, 200),
        ("error", False, 400),
    ]
    assert lines[0]["key"] == "app" and lines[0]["cached_tokens"] == 8
    assert all(SECRET_PROMPT not in r.getMessage() for r in caplog.records)
