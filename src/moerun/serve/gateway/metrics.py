"""Prometheus metrics of one gateway, in its own registry.

Label children are cached in plain dicts so the hot path does one dict lookup per metric;
backend health, circuit state and in-flight counts are read from the router at scrape time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from moerun.core.traffic.circuit import CLOSED, HALF_OPEN
from moerun.serve.gateway.router import Router
from moerun.store.durable import SPOOLING, UNWRITABLE, DurableLedger

_LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class _BackendCollector(Collector):
    def __init__(self, router: Callable[[], Router | None]) -> None:
        self._router = router

    def collect(self) -> Iterator[Metric]:
        router = self._router()
        healthy = GaugeMetricFamily(
            "moerun_gateway_backend_healthy",
            "1 if the backend passes health checks",
            labels=["backend"],
        )
        circuit = GaugeMetricFamily(
            "moerun_gateway_circuit_state",
            "Circuit breaker state: 0 closed, 1 half-open, 2 open",
            labels=["backend"],
        )
        in_flight = GaugeMetricFamily(
            "moerun_gateway_in_flight", "Requests in flight to the backend", labels=["backend"]
        )
        if router is not None:
            for name, st in router.states.items():
                healthy.add_metric([name], 1.0 if st.healthy else 0.0)
                state = st.breaker.state
                circuit.add_metric(
                    [name], 0.0 if state == CLOSED else 1.0 if state == HALF_OPEN else 2.0
                )
                in_flight.add_metric([name], float(st.in_flight))
        yield healthy
        yield circuit
        yield in_flight


class _LedgerCollector(Collector):
    def __init__(self, ledger: Callable[[], DurableLedger | None]) -> None:
        self._ledger = ledger

    def collect(self) -> Iterator[Metric]:
        ledger = self._ledger()
        state = GaugeMetricFamily(
            "moerun_gateway_ledger_state",
            "Usage ledger: 0 ok, 1 spooling (database down or slow), 2 spool unwritable",
        )
        depth = GaugeMetricFamily(
            "moerun_gateway_ledger_spool_rows", "Usage rows in the spool, waiting for the database"
        )
        spooled = CounterMetricFamily(
            "moerun_gateway_ledger_spooled_rows", "Usage rows this process wrote to the spool"
        )
        replayed = CounterMetricFamily(
            "moerun_gateway_ledger_replayed_rows", "Spooled usage rows moved into the database"
        )
        if ledger is not None:
            code = {SPOOLING: 1.0, UNWRITABLE: 2.0}.get(ledger.state, 0.0)
            state.add_metric([], code)
            depth.add_metric([], float(ledger.spool_rows))
            spooled.add_metric([], float(ledger.num_spooled))
            replayed.add_metric([], float(ledger.num_replayed))
        yield state
        yield depth
        yield spooled
        yield replayed


@dataclass(frozen=True, slots=True)
class _Series:
    requests: Counter
    latency: Histogram
    ttft: Histogram
    input_tokens: Counter
    cached_tokens: Counter
    output_tokens: Counter
    cost: Counter


class Metrics:
    """Counters and histograms of requests, errors, TTFT, latency, tokens and cost."""

    def __init__(
        self,
        router: Callable[[], Router | None],
        ledger: Callable[[], DurableLedger | None] = lambda: None,
    ) -> None:
        # The *_created series only add noise to every scrape.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "moerun_gateway_requests",
            "Finished requests",
            ["model", "backend", "key", "status"],
            registry=r,
        )
        self.errors = Counter(
            "moerun_gateway_errors", "Failed attempts and refusals", ["backend", "kind"], registry=r
        )
        self.retries = Counter(
            "moerun_gateway_retries", "Retried attempts", ["backend"], registry=r
        )
        self.ttft = Histogram(
            "moerun_gateway_ttft_seconds",
            "Time to first token",
            ["backend"],
            buckets=_LATENCY_BUCKETS_S,
            registry=r,
        )
        self.latency = Histogram(
            "moerun_gateway_request_duration_seconds",
            "Request duration",
            ["backend"],
            buckets=_LATENCY_BUCKETS_S,
            registry=r,
        )
        self.tokens = Counter(
            "moerun_gateway_tokens", "Tokens by kind", ["backend", "key", "kind"], registry=r
        )
        self.cost = Counter(
            "moerun_gateway_cost_usd", "Spend in USD", ["backend", "key"], registry=r
        )
        r.register(_BackendCollector(router))
        r.register(_LedgerCollector(ledger))
        self._children: dict[tuple[str, str, str, str], _Series] = {}

    def finished(
        self,
        model: str,
        backend: str,
        key: str,
        status: str,
        tokens: tuple[int, int, int],
        cost_usd: float,
        ttft_s: float | None,
        duration_s: float,
    ) -> None:
        """Count one finished request."""
        c = self._children
        k = (model, backend, key, status)
        s = c.get(k)
        if s is None:
            s = c[k] = _Series(
                self.requests.labels(model, backend, key, status),
                self.latency.labels(backend),
                self.ttft.labels(backend),
                self.tokens.labels(backend, key, "input"),
                self.tokens.labels(backend, key, "cached"),
                self.tokens.labels(backend, key, "output"),
                self.cost.labels(backend, key),
            )
        s.requests.inc()
        s.latency.observe(duration_s)
        if ttft_s is not None:
            s.ttft.observe(ttft_s)
        if tokens[0]:
            s.input_tokens.inc(tokens[0])
        if tokens[1]:
            s.cached_tokens.inc(tokens[1])
        if tokens[2]:
            s.output_tokens.inc(tokens[2])
        if cost_usd:
            s.cost.inc(cost_usd)

    def error(self, backend: str, kind: str) -> None:
        """Count one failed attempt or refusal."""
        self.errors.labels(backend, kind).inc()

    def retry(self, backend: str) -> None:
        """Count one retry."""
        self.retries.labels(backend).inc()

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)
