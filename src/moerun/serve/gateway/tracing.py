"""OpenTelemetry traces of proxied requests, with the GenAI semantic conventions.

One CLIENT span per request (`chat <model>` / `text_completion <model>`), a child of the
client's W3C `traceparent` when it sent one, carrying `gen_ai.*` attributes (operation,
request model and parameters, response model, token usage, time to first chunk) and
`error.type` on failure; exported in batches over OTLP/HTTP by a background thread. The
backend receives a `traceparent` for the span, or the client's own when tracing is off.

The SDK is an optional dependency (`pip install 'moerun[otel]'`), imported only when
`tracing.otlp_endpoint` is configured.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from moerun.core.traffic.metering import UsageRecord
from moerun.errors import GatewayConfigError
from moerun.serve.gateway.schema import TracingEntry

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

_TRACEPARENT = re.compile(rb"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
_OPERATIONS = {"chat/completions": "chat", "completions": "text_completion"}
# Request fields and the GenAI attribute each becomes (numbers only; validated upstream).
_REQUEST_ATTRS = {
    "max_tokens": "gen_ai.request.max_tokens",
    "max_completion_tokens": "gen_ai.request.max_tokens",
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "top_k": "gen_ai.request.top_k",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
    "presence_penalty": "gen_ai.request.presence_penalty",
    "seed": "gen_ai.request.seed",
    "n": "gen_ai.request.choice.count",
}


def valid_traceparent(value: bytes | None) -> bytes | None:
    """The header if it is a well-formed W3C traceparent (version 00 layout), else None."""
    if value is None or not _TRACEPARENT.match(value) or value.startswith(b"ff"):
        return None
    return value


class Tracing:
    """Starts and ends request spans; every method is a no-op when tracing is off."""

    def __init__(self, settings: TracingEntry) -> None:
        self.provider: TracerProvider | None = None
        self.tracer: Tracer | None = None
        if settings.otlp_endpoint is not None:
            from opentelemetry.trace import SpanKind
            from opentelemetry.trace.propagation.tracecontext import (
                TraceContextTextMapPropagator,
            )

            self.provider, self.tracer = _open(settings)
            self._kind = SpanKind.CLIENT
            self._propagator = TraceContextTextMapPropagator()

    @property
    def enabled(self) -> bool:
        """Whether spans are recorded."""
        return self.tracer is not None

    def start(self, endpoint: str, req: dict[str, Any], parent: bytes | None) -> Span | None:
        """A span for an admitted request (None when off)."""
        if self.tracer is None:
            return None
        ctx = None
        if parent is not None:
            ctx = self._propagator.extract({"traceparent": parent.decode()})
        operation = _OPERATIONS[endpoint]
        model = str(req.get("model"))
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": operation,
            "gen_ai.request.model": model,
            "gen_ai.request.stream": req.get("stream") is True,
        }
        for field, attr in _REQUEST_ATTRS.items():
            v = req.get(field)
            if isinstance(v, int | float) and not isinstance(v, bool):
                attrs[attr] = v
        return self.tracer.start_span(
            f"{operation} {model}", context=ctx, kind=self._kind, attributes=attrs
        )

    def traceparent(self, span: Span | None, incoming: bytes | None) -> bytes | None:
        """The traceparent to send upstream: the span's, else the client's."""
        if span is None:
            return incoming
        sc = span.get_span_context()
        return b"00-%032x-%016x-%02x" % (sc.trace_id, sc.span_id, sc.trace_flags)

    def finish(
        self,
        span: Span | None,
        rec: UsageRecord,
        response_model: str | None,
        num_attempts: int,
    ) -> None:
        """Record the outcome of a request that reached a backend (or tried to)."""
        if span is None:
            return
        span.set_attributes(
            {
                "gen_ai.usage.input_tokens": rec.num_input_tokens,
                "gen_ai.usage.output_tokens": rec.num_output_tokens,
                "gen_ai.usage.cache_read.input_tokens": rec.num_cached_tokens,
                "http.response.status_code": rec.http_status,
                "moerun.request_id": rec.request_id,
                "moerun.key": rec.key_name,
                "moerun.backend": rec.backend,
                "moerun.status": rec.status,
                "moerun.attempts": num_attempts,
                "moerun.cost_usd": rec.cost_usd,
            }
        )
        if response_model:
            span.set_attribute("gen_ai.response.model", response_model)
        if rec.ttft_ms is not None:
            span.set_attribute("gen_ai.response.time_to_first_chunk", rec.ttft_ms / 1000.0)
        if rec.status != "ok":
            _fail(span, rec.status)
        span.end()

    def close(self) -> None:
        """Export what is buffered and stop the exporter thread."""
        if self.provider is not None:
            self.provider.shutdown()


def _fail(span: Span, error_type: str) -> None:
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute("error.type", error_type)
    span.set_status(Status(StatusCode.ERROR, error_type))


def _open(settings: TracingEntry) -> tuple[TracerProvider, Tracer]:
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.sampling import ParentBasedTraceIdRatio
    except ImportError as exc:
        raise GatewayConfigError(
            "tracing.otlp_endpoint is set but the OpenTelemetry SDK is not installed; "
            "pip install 'moerun[otel]'"
        ) from exc
    provider = TracerProvider(
        resource=Resource.create({"service.name": settings.service_name}),
        sampler=ParentBasedTraceIdRatio(settings.sample_ratio),
    )
    exporter = OTLPSpanExporter(endpoint=settings.otlp_endpoint, timeout=settings.timeout_s)
    provider.add_span_processor(
        BatchSpanProcessor(exporter, schedule_delay_millis=settings.export_interval_s * 1000)
    )
    # The gateway's own provider, not the global one: a library must not take over the
    # process's tracing.
    return provider, provider.get_tracer("moerun.gateway")
