"""MTP acceptance as data: accept lengths turned into per-token acceptance, rows chosen by model
and kind of prompt, and simulate picking the row for its workload."""

from __future__ import annotations

import json

import pytest

from moerun.catalog.perf.mtp import acceptance_for, acceptance_rows
from moerun.cli import main
from moerun.core.perf.acceptance import (
    AcceptanceRow,
    accept_length,
    choose_acceptance,
    per_token_acceptance,
)


def test_accept_length_and_its_inverse_by_hand() -> None:
    # a = 0.5, 3 drafts: 1 + 0.5 + 0.25 + 0.125 = 1.875
    assert accept_length(0.5, 3) == pytest.approx(1.875)
    assert per_token_acceptance(1.875, 3) == pytest.approx(0.5, abs=1e-9)
    # one draft: L = 1 + a
    assert per_token_acceptance(1.84, 1) == pytest.approx(0.84, abs=1e-9)
    assert per_token_acceptance(1.0, 3) == 0.0


def test_catalog_rows_convert_their_published_accept_lengths() -> None:
    rows = {r.id: r for r in acceptance_rows()}
    glm5 = rows["glm5-text-sglang-cookbook"].rates(3)[0]
    # 1 + a + a^2 + a^3 = 3.50 at a = 0.9116 (0.9116 + 0.8310 + 0.7575 = 2.5001)
    assert glm5[1] == pytest.approx(0.9116, abs=1e-3)
    assert all(r.source for r in rows.values())


def test_rows_are_chosen_by_model_and_prompts() -> None:
    text = acceptance_for("glm-5.1-fp8", "text", 3)
    rand = acceptance_for("glm-5.1-fp8", "random", 3)
    assert text is not None and rand is not None
    assert rand.value == pytest.approx(0.21)
    assert text.value == pytest.approx((0.9078 + 0.9116) / 2, abs=1e-3)
    assert text.low == pytest.approx(0.21) and text.high == pytest.approx(0.9116, abs=1e-3)
    assert acceptance_for("qwen3-235b-a22b", "text", 1) is None  # no measurement, no guess


def test_the_nearest_measured_draft_count_is_used_and_said() -> None:
    row = AcceptanceRow("x", ("m",), "text", ((1, (0.8,)), (4, (0.6,))), "somewhere", "a source")
    near = choose_acceptance((row,), "m", "text", 3)
    assert near is not None and near.value == 0.6 and not near.exact_draft_tokens
    exact = choose_acceptance((row,), "m", "text", 1)
    assert exact is not None and exact.value == 0.8 and exact.exact_draft_tokens


BASE = ["simulate", "--model", "glm-5-fp8", "--gpu", "h200_sxm", "--num-gpus", "8", "--mtp", "3"]


def run_json(capsys: pytest.CaptureFixture[str], *extra: str) -> dict:  # type: ignore[type-arg]
    assert main([*BASE, *extra, "--json"]) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_simulate_picks_the_row_for_its_workload(capsys: pytest.CaptureFixture[str]) -> None:
    fixed = run_json(capsys, "--concurrency", "4", "--num-requests", "8", "--osl", "64")
    assert fixed["mtp_acceptance"] == pytest.approx(0.21)  # the benchmark's random prompts
    assert fixed["mtp_acceptance_source"]["prompts"] == "random"
    agentic = run_json(capsys, "--workload", "agentic", "--num-sessions", "2", "--turns", "2")
    assert agentic["mtp_acceptance_source"]["row"] == "glm5-text-sglang-cookbook"
    given = run_json(
        capsys,
        "--concurrency",
        "4",
        "--num-requests",
        "8",
        "--osl",
        "64",
        "--mtp-acceptance",
        "0.5",
    )
    assert given["mtp_acceptance"] == 0.5
    assert given["mtp_acceptance_source"]["source"] == "--mtp-acceptance"
    # the same load decodes faster with more drafts accepted
    assert given["tpot_ms"]["p50"] < fixed["tpot_ms"]["p50"]
