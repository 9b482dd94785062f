"""JSON Schema of each file format, by name."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from moerun.catalog.price_overrides import OverridesFile
from moerun.formats.bench_file import BenchFile
from moerun.formats.plan_config import PlanConfig
from moerun.formats.trace_line import TraceLine
from moerun.serve.gateway.schema import GatewayFile

FORMATS: dict[str, tuple[type[BaseModel], str]] = {
    "plan-config": (PlanConfig, "moerun plan --config FILE (YAML)"),
    "prices": (OverridesFile, "moerun plan --prices FILE (YAML)"),
    "gateway-config": (GatewayFile, "moerun gateway --config FILE (YAML)"),
    "trace": (TraceLine, "one line of a JSONL trace (--workload FILE.jsonl)"),
    "bench-results": (BenchFile, "moerun bench --output FILE (JSON)"),
}


def json_schema(name: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of format `name`."""
    model, what = FORMATS[name]
    schema = model.model_json_schema(by_alias=True)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": name,
        "description": f"{what}. {schema.pop('description', '')}".strip(),
        **schema,
    }
