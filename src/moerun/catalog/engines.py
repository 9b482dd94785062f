"""Engine memory behaviour, reserve assumptions and sgl-router's balance rule from
catalog/data/engines.yaml."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml

from moerun.core.deploy.engine import (
    ENGINES,
    Admission,
    BatchDefault,
    EngineMemory,
    ReserveModel,
    RunningRequestsRule,
)
from moerun.core.traffic.balance import BalanceRule
from moerun.errors import CatalogError


@cache
def _raw() -> dict[str, Any]:
    text = resources.files("moerun.catalog").joinpath("data/engines.yaml").read_text("utf-8")
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise CatalogError("engines.yaml: top level must be a mapping")
    return data


def get_engine(engine: str) -> EngineMemory:
    """Memory behaviour of `vllm` or `sglang`."""
    if engine not in ENGINES:
        raise CatalogError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    e = _raw()["engines"][engine]
    try:
        rows = tuple(
            BatchDefault(
                min_memory_gib=float(row["min_memory_gib"]),
                max_num_batched_tokens=int(row["max_num_batched_tokens"]),
                max_num_seqs=None if row["max_num_seqs"] is None else int(row["max_num_seqs"]),
                exclude_name=row.get("exclude_name"),
            )
            for row in e["batch_defaults"]
        )
        running = e.get("max_running_requests")
        ratio = e.get("new_token_ratio")
        return EngineMemory(
            name=engine,
            default_mem_fraction=float(e["default_mem_fraction"]),
            reserve_inside_budget=bool(e["reserve_inside_budget"]),
            page_size_tokens=int(e["page_size_tokens"]),
            page_size_tokens_dsa=int(e["page_size_tokens_dsa"]),
            batch_defaults=rows,
            running_rule=RunningRequestsRule(
                speculative=int(running["speculative"]),
                per_context_length=int(running["per_context_length"]),
                floor=int(running["floor"]),
                ceiling=int(running["ceiling"]),
                kv_token_share=float(running["kv_token_share"]),
            )
            if running
            else None,
            admission=Admission(
                init=float(ratio["init"]),
                min_factor=float(ratio["min_factor"]),
                decay_steps=int(ratio["decay_steps"]),
                retract_decode_steps=int(ratio["retract_decode_steps"]),
                clip_max_new_tokens=int(ratio["clip_max_new_tokens"]),
                dp_attention_conservativeness=float(ratio["dp_attention_conservativeness"]),
            )
            if ratio
            else None,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CatalogError(f"engines.yaml: engines.{engine}: bad or missing field {exc}") from exc


def get_reserve() -> ReserveModel:
    """moerun's assumptions for per-GPU engine reserve memory."""
    r = _raw()["reserve"]
    try:
        return ReserveModel(
            activation_hidden_vectors_per_token=int(r["activation_hidden_vectors_per_token"]),
            logits_bytes_per_element=int(r["logits_bytes_per_element"]),
            cuda_graph_bytes=int(r["cuda_graph_bytes"]),
            non_torch_bytes=int(r["non_torch_bytes"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CatalogError(f"engines.yaml: reserve: bad or missing field {exc}") from exc


@cache
def sgl_router_balance() -> BalanceRule:
    """sgl-router's load-imbalance thresholds (its defaults, from engines.yaml `sgl_router`)."""
    r = _raw().get("sgl_router") or {}
    try:
        return BalanceRule(
            abs_threshold=float(r["balance_abs_threshold"]),
            rel_threshold=float(r["balance_rel_threshold"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CatalogError(f"engines.yaml: sgl_router: bad or missing field {exc}") from exc
