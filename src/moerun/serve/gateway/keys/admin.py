"""LiteLLM-compatible key management: POST /key/generate, POST /key/delete, GET /key/info,
GET /key/list, all behind the master key (`MOERUN_MASTER_KEY`).

A generated key is returned once; the database keeps only its SHA-256. The replica that
wrote a change reloads its keys at once; the others see it at their next poll.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import orjson

from moerun.core.market.policy import Policy
from moerun.core.traffic.metering import period_start
from moerun.errors import MoerunError, StoreError
from moerun.serve.gateway.asgi import (
    BodyTooLarge,
    ClientGone,
    Refusal,
    read_body,
    send_bytes,
    send_error,
)
from moerun.serve.gateway.config import GatewayConfig
from moerun.serve.gateway.keys.live import BUDGET_DURATIONS, LiveKeys
from moerun.store.keys import DuplicateKey, KeyRow
from moerun.store.writer import Ledger
from moerun.wire.asgi import Receive, Scope, Send

_FIELDS = {
    "key_alias",
    "models",
    "max_budget",
    "budget_duration",
    "rpm_limit",
    "tpm_limit",
    "metadata",
}
_HEX_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_MAX_BODY_BYTES = 64 * 1024


def digest_of(key: str) -> str:
    """The stored id of a key: a 64-hex SHA-256 is taken as is, anything else is hashed."""
    if _HEX_DIGEST.match(key):
        return key
    return hashlib.sha256(key.encode()).hexdigest()


class KeyAdmin:
    """The /key/* routes of one gateway."""

    def __init__(
        self,
        config: GatewayConfig,
        live: LiveKeys,
        ledger: Callable[[], Ledger | None],
        wall: Callable[[], float],
    ) -> None:
        self.config = config
        self.live = live
        self.ledger = ledger
        self.wall = wall
        self.static_names = {k.name for k in config.keys or ()}
        master = config.master_key
        self._master = hashlib.sha256(master.encode()).digest() if master else None

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one /key/* request."""
        try:
            self._authorize(scope)
            out = await self._route(scope, receive)
        except Refusal as r:
            return await send_error(send, r.status, r.message, r.code, r.headers, r.param)
        except ClientGone:
            return None
        await send_bytes(send, 200, orjson.dumps(out))

    def _authorize(self, scope: Scope) -> None:
        if self._master is None:
            msg = "key management is off: start the gateway with MOERUN_MASTER_KEY set"
            raise Refusal(403, msg, "key_management_disabled")
        auth = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
        scheme, _, token = auth.partition(b" ")
        given = hashlib.sha256(token.strip()).digest()
        if scheme.lower() != b"bearer" or not hmac.compare_digest(given, self._master):
            raise Refusal(401, "the /key routes need the master key as Bearer", "invalid_api_key")

    async def _route(self, scope: Scope, receive: Receive) -> dict[str, Any]:
        path, method = scope["path"], scope["method"]
        routes = {
            ("/key/generate", "POST"): self._generate,
            ("/key/delete", "POST"): self._delete,
        }
        if (path, method) in routes:
            return await routes[(path, method)](await _json_body(scope, receive))
        query = {k: v[-1] for k, v in parse_qs(scope["query_string"].decode()).items()}
        if (path, method) == ("/key/info", "GET"):
            return await self._info(query)
        if (path, method) == ("/key/list", "GET"):
            return self._list(query)
        raise Refusal(404, f"no route {method} {path}", "not_found")

    async def _generate(self, body: dict[str, Any]) -> dict[str, Any]:
        unknown = set(body) - _FIELDS
        if unknown:
            msg = f"unsupported field(s): {', '.join(sorted(unknown))}; known: "
            raise Refusal(400, msg + ", ".join(sorted(_FIELDS)), "invalid_request")
        row, key = self._new_row(body)
        try:
            await asyncio.to_thread(self.live.table.insert, row)
        except DuplicateKey:
            msg = f"a key named `{row.key_name}` exists already"
            raise Refusal(400, msg, "duplicate_key_alias", param="key_alias") from None
        except StoreError as exc:
            raise Refusal(503, str(exc), "key_store_unavailable") from exc
        await self._reload()
        return {"key": key, "token": row.key_sha256, **_public(row)}

    def _new_row(self, body: dict[str, Any]) -> tuple[KeyRow, str]:
        alias = body.get("key_alias")
        if alias is not None and (not isinstance(alias, str) or not 0 < len(alias) <= 128):
            raise _bad("key_alias", "a string of 1 to 128 characters")
        models = body.get("models") or None
        if models is not None:
            if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
                raise _bad("models", "a list of model names")
            unknown = [m for m in models if m not in self.config.models]
            if unknown:
                msg = f"unknown model(s) {', '.join(unknown)}; served: "
                raise Refusal(
                    400, msg + ", ".join(self.config.models), "model_not_found", param="models"
                )
        budget = _number(body, "max_budget")
        duration = body.get("budget_duration") or "month"
        if duration not in BUDGET_DURATIONS:
            raise _bad("budget_duration", "one of " + ", ".join(BUDGET_DURATIONS))
        metadata = body.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise _bad("metadata", "an object")
        try:
            Policy.from_dict(metadata.get("policy"))
        except (MoerunError, TypeError, ValueError, AttributeError) as exc:
            msg = f"metadata.policy: {exc}"
            raise Refusal(400, msg, "invalid_policy", param="metadata") from exc
        key = "sk-" + secrets.token_urlsafe(32)
        digest = hashlib.sha256(key.encode()).hexdigest()
        name = alias or f"key-{digest[:12]}"
        if name in self.static_names:
            msg = f"`{name}` is the name of a key in the config file"
            raise Refusal(400, msg, "duplicate_key_alias", param="key_alias")
        row = KeyRow(
            key_sha256=digest,
            key_name=name,
            key_alias=alias,
            models=tuple(dict.fromkeys(models)) if models else None,
            max_budget_usd=budget,
            budget_period=BUDGET_DURATIONS[duration],
            rpm_limit=_count(body, "rpm_limit"),
            tpm_limit=_count(body, "tpm_limit"),
            metadata=metadata,
            created_at_s=self.wall(),
        )
        return row, key

    async def _delete(self, body: dict[str, Any]) -> dict[str, Any]:
        keys, aliases = body.get("keys") or [], body.get("key_aliases") or []
        for name, value in (("keys", keys), ("key_aliases", aliases)):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise _bad(name, "a list of strings")
        if not keys and not aliases:
            raise Refusal(400, "give `keys` or `key_aliases` to delete", "invalid_request")
        try:
            gone = await asyncio.to_thread(
                self.live.table.delete, [digest_of(k) for k in keys], aliases
            )
        except StoreError as exc:
            raise Refusal(503, str(exc), "key_store_unavailable") from exc
        if not gone:
            raise Refusal(404, "no such key", "key_not_found")
        await self._reload()
        return {"deleted_keys": gone}

    async def _info(self, query: dict[str, str]) -> dict[str, Any]:
        key = query.get("key")
        if not key:
            raise Refusal(400, "give ?key=<key or its sha256>", "invalid_request", param="key")
        await self._reload()
        row = self.live.rows.get(digest_of(key))
        if row is None:
            raise Refusal(404, "no such key", "key_not_found")
        info = _public(row)
        info["spend"] = await self._spend(row)
        return {"key": row.key_sha256, "info": info}

    def _list(self, query: dict[str, str]) -> dict[str, Any]:
        rows = sorted(self.live.rows.values(), key=lambda r: r.created_at_s)
        full = query.get("return_full_object", "").lower() == "true"
        keys: list[Any] = [
            {"token": r.key_sha256, **_public(r)} if full else r.key_sha256 for r in rows
        ]
        return {"keys": keys, "total_count": len(keys), "current_page": 1, "total_pages": 1}

    async def _spend(self, row: KeyRow) -> float:
        ledger = self.ledger()
        if ledger is None:
            return 0.0
        since = period_start(datetime.fromtimestamp(self.wall(), UTC), row.budget_period)
        try:
            spend = await asyncio.to_thread(ledger.spend_by_key, since.timestamp())
        except StoreError as exc:
            raise Refusal(503, str(exc), "ledger_unavailable") from exc
        return spend.get(row.key_name, 0.0)

    async def _reload(self) -> None:
        try:
            await self.live.refresh(force=True)
        except StoreError as exc:
            raise Refusal(503, str(exc), "key_store_unavailable") from exc


def _public(row: KeyRow) -> dict[str, Any]:
    return {
        "key_name": row.key_name,
        "key_alias": row.key_alias,
        "models": list(row.models or ()),
        "max_budget": row.max_budget_usd,
        "budget_duration": row.budget_period,
        "rpm_limit": row.rpm_limit,
        "tpm_limit": row.tpm_limit,
        "metadata": row.metadata,
        "created_at": row.created_at_s,
        "expires": None,
    }


async def _json_body(scope: Scope, receive: Receive) -> dict[str, Any]:
    length = next((v for k, v in scope["headers"] if k == b"content-length"), None)
    try:
        raw = await read_body(receive, _MAX_BODY_BYTES, length)
        body = orjson.loads(raw)
    except BodyTooLarge:
        raise Refusal(413, "request body is too large", "request_too_large") from None
    except orjson.JSONDecodeError as exc:
        raise Refusal(400, f"request body is not valid JSON: {exc}", "invalid_json") from None
    if not isinstance(body, dict):
        raise Refusal(400, "request body must be a JSON object", "invalid_json")
    return body


def _bad(field: str, expected: str) -> Refusal:
    return Refusal(400, f"`{field}` must be {expected}", "invalid_type", param=field)


def _number(body: dict[str, Any], field: str) -> float | None:
    v = body.get(field)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
        raise _bad(field, "a non-negative number")
    return float(v)


def _count(body: dict[str, Any], field: str) -> int | None:
    v = body.get(field)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
        raise _bad(field, "a positive integer")
    return v
