"""Background health probes: GET <base_url>/<health_path> on each probed backend.

Self-hosted backends are probed by default; managed ones only when `health_check: true`
(probes cost money and quota). A failed probe takes the backend out of routing until one
passes; the circuit breaker works independently on real traffic.
"""

from __future__ import annotations

import asyncio
import logging

from moerun.core.traffic.circuit import MISCONFIGURED, classify
from moerun.serve.gateway.chunks import ChunkQueue
from moerun.serve.gateway.router import BackendState, Router
from moerun.wire.client import TransportError

log = logging.getLogger("moerun.gateway")


async def probe(state: BackendState, timeout_s: float) -> int | None:
    """The HTTP status the backend answers its health path with (None: no answer in time)."""
    pool = state.pool
    head = (
        pool.head("GET", state.health_path)
        + (f"authorization: Bearer {state.spec.api_key}\r\n" if state.spec.api_key else "")
        + "connection: close\r\n\r\n"
    ).encode("latin-1")
    try:
        conn = await pool.connect(timeout_s)
    except TransportError:
        return None
    try:
        body = ChunkQueue()
        conn.request(head, body)
        await conn.wait_headers(timeout_s)
        await body.read_body(timeout_s)
        return conn.status
    except TransportError:
        return None
    finally:
        conn.close()


async def health_loop(router: Router, interval_s: float, timeout_s: float) -> None:
    """Probe every probed backend each interval, forever (cancel to stop)."""
    probed = [s for s in router.states.values() if s.spec.health_check]
    if not probed:
        return
    while True:
        results = await asyncio.gather(*(probe(s, timeout_s) for s in probed))
        for state, status in zip(probed, results, strict=True):
            ok = status is not None and 200 <= status < 300
            if status is not None and classify(status) == MISCONFIGURED:
                state.misconfigured_status = status  # a wrong key, URL or health_path
            elif ok:
                state.misconfigured_status = None
            if ok != state.healthy:
                log.warning(
                    "backend %s is %s", state.spec.name, "healthy again" if ok else "unhealthy"
                )
            state.healthy = ok
        await asyncio.sleep(interval_s)
