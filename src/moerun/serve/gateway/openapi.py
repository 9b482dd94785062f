"""The gateway's OpenAPI document, from pydantic wire schemas (used for docs and fuzzing only;
the hot path never validates through them, and unknown fields always pass through)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from moerun.serve.gateway.config import GatewayConfig

_REF = "#/components/schemas/{model}"


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ChatMessage(_Open):
    """One chat message."""

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | None = None


class StreamOptions(_Open):
    """Streaming options."""

    include_usage: bool | None = None


class ChatCompletionRequest(_Open):
    """POST /v1/chat/completions body (unknown fields pass through to the backend)."""

    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1, le=4096)
    temperature: float | None = Field(default=None, ge=0, le=2)


class CompletionRequest(_Open):
    """POST /v1/completions body (unknown fields pass through to the backend)."""

    model: str
    prompt: str
    stream: bool | None = None
    max_tokens: int | None = Field(default=None, ge=1, le=4096)


class ErrorDetail(BaseModel):
    """The error object."""

    message: str
    type: str
    code: str | None
    param: str | None = None


class ErrorResponse(BaseModel):
    """Every error the gateway returns."""

    error: ErrorDetail


def _schemas() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for model in (ChatCompletionRequest, CompletionRequest, ErrorResponse):
        schema = model.model_json_schema(ref_template=_REF)
        out.update(schema.pop("$defs", {}))
        out[model.__name__] = schema
    return out


def _errors(*statuses: int) -> dict[str, Any]:
    ref = {"$ref": _REF.format(model="ErrorResponse")}
    return {
        str(s): {"description": "error", "content": {"application/json": {"schema": ref}}}
        for s in statuses
    }


def _post(schema: str, summary: str) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "security": [{"bearer": []}],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": _REF.format(model=schema)}}},
            },
            "responses": {
                "200": {
                    "description": "the answer (JSON, or SSE when stream is true)",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                **_errors(400, 401, 403, 404, 413, 429, 502, 503, 504),
            },
        }
    }


def openapi_document(config: GatewayConfig) -> dict[str, Any]:
    """OpenAPI 3.1 document of the gateway; `model` is limited to the configured names."""
    schemas = _schemas()
    for name in ("ChatCompletionRequest", "CompletionRequest"):
        schemas[name]["properties"]["model"]["enum"] = sorted(config.models)
    return {
        "openapi": "3.1.0",
        "info": {"title": "moerun gateway", "version": "1"},
        "paths": {
            "/v1/chat/completions": _post("ChatCompletionRequest", "Chat completion"),
            "/v1/completions": _post("CompletionRequest", "Text completion"),
            "/v1/models": {
                "get": {
                    "summary": "Models this key may use",
                    "security": [{"bearer": []}],
                    "responses": {
                        "200": {
                            "description": "model list",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                        **_errors(401),
                    },
                }
            },
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
