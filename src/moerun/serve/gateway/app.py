"""The gateway as one ASGI application: raw routes, no framework on the hot path.

POST /v1/chat/completions, /v1/completions (streamed or not); GET /v1/models, /health,
/metrics, /openapi.json; /key/* (keys managed live, with the master key). `startup` opens
the ledger, limits and live keys and starts health probes; uvicorn calls it through the ASGI
lifespan, tests may call it directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime

import orjson

from moerun.core.traffic.metering import period_start
from moerun.serve.gateway.asgi import send_bytes, send_error
from moerun.serve.gateway.config import GatewayConfig, KeySpec
from moerun.serve.gateway.finish import Finisher
from moerun.serve.gateway.health import health_loop
from moerun.serve.gateway.keys.admin import KeyAdmin
from moerun.serve.gateway.keys.live import LiveKeys
from moerun.serve.gateway.limits import Limits, MemoryLimits
from moerun.serve.gateway.metrics import Metrics
from moerun.serve.gateway.openapi import openapi_document
from moerun.serve.gateway.proxy import Proxy
from moerun.serve.gateway.redis_limits import RedisLimits
from moerun.serve.gateway.router import Router
from moerun.serve.gateway.tracing import Tracing
from moerun.store.durable import UNWRITABLE, DurableLedger
from moerun.store.keys import KeyTable
from moerun.store.usage import open_ledger
from moerun.wire.asgi import Receive, Scope, Send

log = logging.getLogger("moerun.gateway")
_PROMETHEUS = b"text/plain; version=0.0.4; charset=utf-8"


class GatewayApp:
    """The ASGI app; one instance per gateway process (or per test)."""

    def __init__(
        self,
        config: GatewayConfig,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.wall = wall
        self.rng = rng or random.Random()
        self.router: Router | None = None
        self.metrics = Metrics(lambda: self.router, lambda: self.ledger)
        self.ledger: DurableLedger | None = None
        self.limits: Limits | None = None
        self.proxy: Proxy | None = None
        self.tracing: Tracing | None = None
        self.live_keys: LiveKeys | None = None
        self.key_admin: KeyAdmin | None = None
        self._seeded: set[str] = set()  # live keys whose budget was seeded from the ledger
        self._health: asyncio.Task[None] | None = None
        self._key_poll: asyncio.Task[None] | None = None
        self.startup_error: str | None = None
        tokens = (config.master_key, config.metrics_token)
        self._detail_digests = (
            [hashlib.sha256(t.encode()).digest() for t in tokens if t]
            if config.settings.server.protect_details
            else []
        )

    async def startup(self) -> None:
        """Open the ledger (migrating it), the limits, the backends; start health probes."""
        cfg = self.config
        self.router = Router(cfg, asyncio.get_running_loop())
        led = cfg.settings.ledger
        self.ledger = await asyncio.to_thread(
            open_ledger, cfg.database_url, led.sync, led.spool_dir, led.commit_timeout_s
        )
        self.ledger.start()
        self.limits = (
            RedisLimits(cfg.redis_url, cfg.settings.redis_prefix, self._ledger_spend)
            if cfg.redis_url
            else MemoryLimits()
        )
        await self._seed_budgets()
        self.tracing = Tracing(cfg.settings.tracing)
        finisher = Finisher(
            self.router,
            self.ledger,
            self.limits,
            self.metrics,
            self.clock,
            self.wall,
            self.tracing,
        )
        self.proxy = Proxy(
            cfg,
            self.router,
            self.limits,
            self.metrics,
            finisher,
            self.clock,
            self.wall,
            self.rng,
            self.tracing,
        )
        loop = asyncio.get_running_loop()
        if cfg.authenticates:
            self.live_keys = LiveKeys(KeyTable(cfg.database_url), self._apply_keys)
            await self.live_keys.refresh(force=True)
            self._key_poll = loop.create_task(self.live_keys.run(cfg.settings.key_poll_s))
            self.key_admin = KeyAdmin(cfg, self.live_keys, lambda: self.ledger, self.wall)
        h = cfg.settings.health
        self._health = loop.create_task(health_loop(self.router, h.interval_s, h.timeout_s))

    async def _apply_keys(self, keys: list[KeySpec]) -> None:
        """Swap in the live keys; seed the budget of each one seen for the first time."""
        assert self.router is not None and self.proxy is not None
        assert self.ledger is not None and self.limits is not None
        fresh = [k for k in keys if k.budget_usd is not None and k.name not in self._seeded]
        for key in fresh:
            now_s = self.wall()
            await self.limits.seed_spend(key, await self._ledger_spend(key, now_s), now_s)
            self._seeded.add(key.name)
        self.router.set_live_keys(keys)
        self.proxy.set_live_keys(keys)

    async def _seed_budgets(self) -> None:
        assert self.ledger is not None and self.limits is not None
        now_s = self.wall()
        budgeted = [k for k in self.config.keys or () if k.budget_usd is not None]
        for period in sorted({k.budget_period for k in budgeted}):
            since = period_start(datetime.fromtimestamp(now_s, UTC), period).timestamp()
            spend = await asyncio.to_thread(self.ledger.spend_by_key, since)
            for key in budgeted:
                if key.budget_period == period:
                    await self.limits.seed_spend(key, spend.get(key.name, 0.0), now_s)

    async def _ledger_spend(self, key: KeySpec, now_s: float) -> float:
        """A key's spend in the ledger over its budget period holding now_s."""
        assert self.ledger is not None
        moment = datetime.fromtimestamp(now_s, UTC)
        since = period_start(moment, key.budget_period).timestamp()
        spend = await asyncio.to_thread(self.ledger.spend_by_key, since)
        return spend.get(key.name, 0.0)

    async def shutdown(self) -> None:
        """Stop probes, close connections, the limits and the ledger."""
        for task in (self._health, self._key_poll):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.live_keys is not None:
            self.live_keys.table.close()
        if self.router is not None:
            self.router.close()
        if self.limits is not None:
            await self.limits.close()
        if self.ledger is not None:
            await self.ledger.stop()
            self.ledger.close()
        if self.tracing is not None:
            self.tracing.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            return await self._http(scope, receive, send)
        if kind == "lifespan":
            return await self._lifespan(receive, send)
        return None

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        if self.proxy is None:
            return await send_error(send, 503, "the gateway is starting", "starting")
        if path == "/v1/chat/completions" or path == "/v1/completions":
            if method != "POST":
                return await send_error(send, 405, f"use POST for {path}", "method_not_allowed")
            return await self.proxy.handle(scope, receive, send, path[4:])
        if path.startswith("/key/"):
            if self.key_admin is None:
                msg = "key management is off: start the gateway with MOERUN_MASTER_KEY set"
                return await send_error(send, 403, msg, "key_management_disabled")
            return await self.key_admin.handle(scope, receive, send)
        if method not in ("GET", "HEAD"):
            return await send_error(send, 405, f"use GET for {path}", "method_not_allowed")
        if path == "/v1/models":
            return await self._models(scope, send)
        if path == "/health":
            return await self._healthz(send, self._may_see_details(scope))
        if path == "/metrics":
            if not self._may_see_details(scope):
                msg = "/metrics needs `Authorization: Bearer` with the master or metrics token"
                return await send_error(send, 401, msg, "invalid_api_key")
            return await send_bytes(send, 200, self.metrics.render(), _PROMETHEUS)
        if path == "/openapi.json":
            return await send_bytes(send, 200, orjson.dumps(openapi_document(self.config)))
        await send_error(send, 404, f"no route {path}", "not_found")

    async def _models(self, scope: Scope, send: Send) -> None:
        assert self.proxy is not None and self.router is not None
        key_name = None
        if self.config.authenticates:
            auth = next((v for k, v in scope["headers"] if k == b"authorization"), None)
            key = self.proxy.authenticate(auth)
            if key is None:
                return await send_error(send, 401, "missing or invalid API key", "invalid_api_key")
            key_name = key.name
        data = [
            {"id": model, "object": "model", "created": 0, "owned_by": "moerun"}
            for model in self.config.models
            if self.router.allowed.get((key_name, model))
        ]
        await send_bytes(send, 200, orjson.dumps({"object": "list", "data": data}))

    def _may_see_details(self, scope: Scope) -> bool:
        """Whether the request may read /metrics and /health details."""
        if not self._detail_digests:
            return True
        auth = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
        scheme, _, token = auth.partition(b" ")
        if scheme.lower() != b"bearer":
            return False
        given = hashlib.sha256(token.strip()).digest()
        return any(hmac.compare_digest(given, d) for d in self._detail_digests)

    async def _healthz(self, send: Send, details: bool) -> None:
        assert self.router is not None and self.ledger is not None
        now = self.clock()
        ledger = self.ledger
        up = any(s.available(now) for s in self.router.states.values())
        # Spooling still serves every request; only a spool that cannot be written refuses.
        up = up and ledger.state != UNWRITABLE
        status = 200 if up else 503
        if not details:
            brief = {"status": "ok" if up else "unavailable"}
            return await send_bytes(send, status, orjson.dumps(brief))
        backends = {}
        for name, s in self.router.states.items():
            p50, p99 = s.ttft.quantiles(now)
            backends[name] = {
                "healthy": s.healthy,
                "circuit": s.breaker.state,
                "in_flight": s.in_flight,
                "misconfigured_status": s.misconfigured_status,
                "ttft_p50_ms": None if p50 is None else round(p50 * 1000, 3),
                "ttft_p99_ms": None if p99 is None else round(p99 * 1000, 3),
            }
        body = {
            "status": "ok" if up else "unavailable",
            "backends": backends,
            "ledger": {"state": ledger.state, "spool_rows": ledger.spool_rows},
        }
        await send_bytes(send, status, orjson.dumps(body))

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    self.startup_error = str(exc)
                    log.error("gateway failed to start: %s", exc)
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return
