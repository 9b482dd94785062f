"""OpenTelemetry traces exported over real OTLP/HTTP to a receiver on 127.0.0.1, W3C
traceparent passed to backends, and /metrics and /health details behind a token."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from tests.fixtures.servers import UvicornThread as ThreadServer
from tests.fixtures.upstream import UpstreamServer
from tests.serve.factories import MODEL, GatewayServer, backend_entry, make_config

CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
CLIENT_TP = f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"


async def _drain(receive: Any) -> bytes:
    raw = b""
    while True:
        msg = await receive()
        raw += msg.get("body", b"")
        if not msg.get("more_body"):
            return raw


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        msg = await receive()
        await send({"type": msg["type"] + ".complete"})
        if msg["type"] == "lifespan.shutdown":
            return


async def _reply(send: Any, status: int, body: bytes, ctype: bytes) -> None:
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", ctype)]}
    )
    await send({"type": "http.response.body", "body": body})


class OtlpReceiver(ThreadServer):
    """An OTLP/HTTP trace receiver (protobuf), keeping every span it is sent."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.resources: list[dict[str, Any]] = []

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] == "lifespan":
                return await _lifespan(receive, send)
            raw = await _drain(receive)
            assert scope["path"] == "/v1/traces"
            req = ExportTraceServiceRequest.FromString(raw)
            for rs in req.resource_spans:
                self.resources.append(_attrs(rs.resource.attributes))
                for ss in rs.scope_spans:
                    self.spans.extend(ss.spans)
            ok = ExportTraceServiceResponse().SerializeToString()
            await _reply(send, 200, ok, b"application/x-protobuf")

        super().__init__(app)


class Recorder(ThreadServer):
    """A backend that records the traceparent it gets; "bad" as content answers 400."""

    def __init__(self) -> None:
        self.traceparents: list[str | None] = []

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] == "lifespan":
                return await _lifespan(receive, send)
            body = json.loads(await _drain(receive) or b"{}")
            headers = dict(scope["headers"])
            tp = headers.get(b"traceparent")
            self.traceparents.append(tp.decode() if tp else None)
            if body.get("messages", [{}])[-1].get("content") == "bad":
                err = {"error": {"message": "bad request", "type": "x", "code": "bad"}}
                return await _reply(send, 400, json.dumps(err).encode(), b"application/json")
            answer = {
                "id": "cmpl-1",
                "object": "chat.completion",
                "model": body.get("model"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "hi"},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 21, "completion_tokens": 5, "total_tokens": 26},
            }
            await _reply(send, 200, json.dumps(answer).encode(), b"application/json")

        super().__init__(app)


def _attrs(kvs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in kvs:
        v = kv.value
        out[kv.key] = getattr(v, v.WhichOneof("value"))
    return out


def _chat(gw: GatewayServer, content: str = "hi", **headers: str) -> httpx.Response:
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": content}],
        "max_tokens": 5,
        "temperature": 0.5,
    }
    return httpx.post(gw.url + "/v1/chat/completions", json=body, headers=headers, timeout=10)


def _wait(check: Callable[[], bool], limit_s: float = 10.0) -> None:
    deadline = time.monotonic() + limit_s
    while not check():
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.05)


def test_spans_exported_over_otlp_with_genai_attributes(
    gateway: Callable[..., GatewayServer], sqlite_url: str
) -> None:
    receiver = OtlpReceiver().start()
    backend = Recorder().start()
    try:
        entry = backend_entry("a", backend, health_check=False)  # type: ignore[arg-type]
        cfg = make_config([entry], sqlite_url)
        cfg["tracing"] = {
            "otlp_endpoint": receiver.url + "/v1/traces",
            "export_interval_s": 0.05,
            "service_name": "gw-under-test",
        }
        gw = gateway(cfg)
        assert _chat(gw, traceparent=CLIENT_TP).status_code == 200
        assert _chat(gw, "bad").status_code == 400
        _wait(lambda: len(receiver.spans) >= 2)
    finally:
        backend.stop()
        receiver.stop()
    ok, bad = sorted(receiver.spans, key=lambda s: s.start_time_unix_nano)
    assert receiver.resources[0]["service.name"] == "gw-under-test"
    assert ok.name == f"chat {MODEL}" and ok.kind == Span.SPAN_KIND_CLIENT
    # A child of the client's span, in the client's trace.
    assert ok.trace_id.hex() == CLIENT_TRACE and ok.parent_span_id.hex() == CLIENT_SPAN
    a = _attrs(ok.attributes)
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.request.model"] == MODEL
    assert a["gen_ai.response.model"] == entry["model"]
    assert a["gen_ai.request.max_tokens"] == 5
    assert a["gen_ai.request.temperature"] == 0.5
    assert a["gen_ai.usage.input_tokens"] == 21 and a["gen_ai.usage.output_tokens"] == 5
    assert a["http.response.status_code"] == 200 and a["moerun.backend"] == "a"
    assert "error.type" not in a and ok.status.code != Status.STATUS_CODE_ERROR
    # The backend got the gateway span's context: same trace, the span as parent.
    assert backend.traceparents[0] == f"00-{CLIENT_TRACE}-{ok.span_id.hex()}-01"
    # No prompt text in the span.
    assert all(v != "hi" for v in a.values())
    # The refused request: its own trace (no parent), marked as an error.
    b = _attrs(bad.attributes)
    assert bad.parent_span_id == b"" and bad.trace_id.hex() != CLIENT_TRACE
    assert b["http.response.status_code"] == 400 and b["error.type"] == "error"
    assert bad.status.code == Status.STATUS_CODE_ERROR
    sent = backend.traceparents[1]
    assert sent is not None and sent[:52] == f"00-{bad.trace_id.hex()}-{bad.span_id.hex()}"
    assert int(sent[53:], 16) & 1  # sampled (W3C level 2 may add the random-id flag, 0x02)


def test_streamed_span_has_time_to_first_chunk(
    upstream: Callable[..., UpstreamServer],
    gateway: Callable[..., GatewayServer],
    sqlite_url: str,
) -> None:
    receiver = OtlpReceiver().start()
    try:
        cfg = make_config([backend_entry("a", upstream(chunk_delay_s=0.01))], sqlite_url)
        cfg["tracing"] = {"otlp_endpoint": receiver.url + "/v1/traces", "export_interval_s": 0.05}
        gw = gateway(cfg)
        body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True}
        with httpx.stream("POST", gw.url + "/v1/chat/completions", json=body) as r:
            assert r.status_code == 200
            lines = [line for line in r.iter_lines() if line]
        assert lines[-1] == "data: [DONE]"
        _wait(lambda: len(receiver.spans) >= 1)
    finally:
        receiver.stop()
    a = _attrs(receiver.spans[0].attributes)
    assert a["gen_ai.request.stream"] is True
    assert 0 < a["gen_ai.response.time_to_first_chunk"] < 5
    assert a["gen_ai.usage.output_tokens"] == 8  # the fake upstream's usage chunk


def test_traceparent_passes_through_when_tracing_is_off(
    gateway: Callable[..., GatewayServer], sqlite_url: str
) -> None:
    backend = Recorder().start()
    try:
        entry = backend_entry("a", backend, health_check=False)  # type: ignore[arg-type]
        gw = gateway(make_config([entry], sqlite_url))
        assert _chat(gw, traceparent=CLIENT_TP).status_code == 200
        assert _chat(gw, traceparent="00-zz-not-valid").status_code == 200
        assert _chat(gw).status_code == 200
    finally:
        backend.stop()
    assert backend.traceparents == [CLIENT_TP, None, None]


def test_metrics_and_health_details_need_a_token(
    upstream: Callable[..., UpstreamServer],
    gateway: Callable[..., GatewayServer],
    sqlite_url: str,
) -> None:
    cfg = make_config([backend_entry("a", upstream())], sqlite_url)
    cfg["server"] = {"access_log": False, "protect_details": True}
    env = {"MOERUN_METRICS_TOKEN": "metrics-secret", "MOERUN_MASTER_KEY": "master-secret"}
    gw = gateway(cfg, env)
    assert httpx.get(gw.url + "/metrics").status_code == 401
    bearer = {"authorization": "Bearer wrong"}
    assert httpx.get(gw.url + "/metrics", headers=bearer).status_code == 401
    for token in ("metrics-secret", "master-secret"):
        r = httpx.get(gw.url + "/metrics", headers={"authorization": f"Bearer {token}"})
        assert r.status_code == 200 and "moerun_gateway" in r.text
    brief = httpx.get(gw.url + "/health")
    assert brief.status_code == 200 and brief.json() == {"status": "ok"}
    full = httpx.get(gw.url + "/health", headers={"authorization": "Bearer metrics-secret"})
    assert set(full.json()["backends"]) == {"a"}
    # Unprotected by default.
    open_gw = gateway(make_config([backend_entry("b", upstream())], sqlite_url + "-2"))
    assert httpx.get(open_gw.url + "/metrics").status_code == 200
    assert "backends" in httpx.get(open_gw.url + "/health").json()


def test_protecting_details_without_a_token_is_a_config_error(
    upstream: Callable[..., UpstreamServer], sqlite_url: str
) -> None:
    import yaml

    from moerun.errors import GatewayConfigError
    from moerun.serve.gateway.config import parse_config

    cfg = make_config([backend_entry("a", upstream())], sqlite_url)
    cfg["server"] = {"protect_details": True}
    with pytest.raises(GatewayConfigError, match="MOERUN_METRICS_TOKEN"):
        parse_config(yaml.safe_dump(cfg), {})
