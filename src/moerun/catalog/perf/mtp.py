"""Measured MTP acceptance from catalog/data/mtp_acceptance.yaml."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml

from moerun.core.perf.acceptance import (
    PROMPT_KINDS,
    AcceptanceChoice,
    AcceptanceRow,
    choose_acceptance,
    per_token_acceptance,
)
from moerun.errors import CatalogError


def _rates(row: dict[str, Any]) -> tuple[tuple[int | None, tuple[float, ...]], ...]:
    if "per_token_acceptance" in row:
        k = row.get("draft_tokens")
        return (
            (None if k is None else int(k), tuple(float(v) for v in row["per_token_acceptance"])),
        )
    if "accept_length_by_draft_tokens" in row:
        return tuple(
            (int(k), (per_token_acceptance(float(length), int(k)),))
            for k, length in sorted(row["accept_length_by_draft_tokens"].items())
        )
    k = int(row["draft_tokens"])
    return ((k, tuple(per_token_acceptance(float(v), k) for v in row["accept_length"])),)


@cache
def acceptance_rows() -> tuple[AcceptanceRow, ...]:
    """Every measured acceptance row."""
    text = resources.files("moerun.catalog").joinpath("data/mtp_acceptance.yaml").read_text()
    data = yaml.safe_load(text)
    rows = []
    for i, row in enumerate(data.get("rows", [])):
        try:
            if row["prompts"] not in PROMPT_KINDS:
                raise ValueError(f"prompts must be one of {PROMPT_KINDS}")
            rows.append(
                AcceptanceRow(
                    id=str(row["id"]),
                    applies_to=tuple(row["applies_to"]),
                    prompts=row["prompts"],
                    rates_by_draft_tokens=_rates(row),
                    measured_on=str(row["measured_on"]),
                    source=str(row["source"]),
                    note=str(row.get("note", "")),
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CatalogError(
                f"mtp_acceptance.yaml: row {i}: bad or missing field ({exc})"
            ) from None
    return tuple(rows)


def acceptance_for(model_id: str, prompts: str, draft_tokens: int) -> AcceptanceChoice | None:
    """The measured acceptance for a catalog model and kind of prompt (None: no row)."""
    return choose_acceptance(acceptance_rows(), model_id, prompts, draft_tokens)
