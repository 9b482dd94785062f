"""`moerun plan` and `moerun fit-table` as a user runs them: JSON contract, inputs, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from moerun.cli import main
from moerun.commands.deployment_input import DEPLOYMENT_KEYS
from moerun.commands.plan_input import request_from_option

FAST = [
    "--gpus",
    "h200_sxm,b200_sxm",
    "--nodes",
    "1",
    "--engines",
    "vllm",
    "--mtp",
    "0,1",
    "--no-disaggregation",
    "--no-simulate",
    "--no-progress",
]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "moerun.cli", *args], capture_output=True, text=True, timeout=120
    )


def plan_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert main(["plan", "--json", *args]) == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


def test_default_plan_full_search_is_a_deployable_ranking(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # unverified combinations admitted: this test is about the ranking's shape and its
    # break-even (test_support_gate covers what the default admits)
    data = plan_json(capsys, "--no-progress", "--allow-unverified")
    assert data["model"] == "glm-5.1" and data["workload"]["preset"] == "agentic-coding"
    assert data["recommendation"] == data["options"][0]["label"]
    options = data["options"]
    assert [o["rank"] for o in options] == list(range(1, len(options) + 1))
    costs = [o["cost"]["usd_per_month"] for o in options]
    assert costs == sorted(costs)
    kinds = {o["kind"] for o in options}
    assert {"self-hosted", "managed"} <= kinds
    assert data["search"]["screened"] > 1000  # GPU x nodes x layout x engine x MTP (x xPyD)
    for o in options:
        assert set(o) >= {
            "rank",
            "kind",
            "replicas",
            "deployment",
            "disaggregation",
            "managed",
            "cost",
            "performance",
        }
        for d in _deployments(o):
            assert tuple(d) == DEPLOYMENT_KEYS
        if o["kind"] == "managed":
            assert o["deployment"] is None and o["managed"]["base_url"].startswith("https://")
            assert o["performance"]["published"]["p99_verified"] is False
        else:
            assert o["performance"]["calibration"]["status"] in (
                "calibrated",
                "extrapolated",
                "uncalibrated",
            )
            assert o["cost"]["gpu_price"]["source"] and o["cost"]["gpu_price"]["as_of"]
    simulated = [o for o in options if o["performance"].get("source") == "simulated"]
    assert simulated, "the cheapest self-hosted finalists are simulated"
    # the deploy side reads every option without complaint
    for o in options[:10]:
        request_from_option(o, f"option {o['rank']}")
    # a break-even pair is named; whether self-hosting beats the API below 1000x the volume
    # is the model's answer (with measured MTP acceptance the default plan's cheapest fleet
    # costs within 1% of the API per request at its always-on utilization)
    be = data["break_even"]
    assert be["self_hosted"] in {o["label"] for o in options if o["kind"] == "self-hosted"}
    assert be["managed"] in {o["label"] for o in options if o["kind"] == "managed"}
    assert be["requests_per_day"] is None or be["requests_per_day"] > 0
    # the plan says how its first self-hosted MTP option moves with the measured acceptance:
    # more accepted drafts never cost more per request
    sens = data["mtp_acceptance"]["sensitivity"]
    assert [p["label"] for p in sens] == ["low", "assumed", "high"]
    assert sens[0]["acceptance"] < sens[1]["acceptance"] <= sens[2]["acceptance"]
    assert sens[0]["output_tok_per_s_per_gpu"] < sens[1]["output_tok_per_s_per_gpu"]
    assert data["mtp_acceptance"]["source"].startswith("SGLang cookbook GLM-5")


def _deployments(o: dict[str, Any]) -> list[dict[str, Any]]:
    if o["disaggregation"]:
        return [o["disaggregation"][r]["deployment"] for r in ("prefill", "decode")]
    return [o["deployment"]] if o["deployment"] else []


def test_human_output_leads_with_the_recommendation() -> None:
    proc = run("plan", "--workload", "chat", *FAST)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("moerun plan: glm-5.1, chat")
    assert any(line.startswith("Recommendation:") for line in lines[:4])
    assert "Ranked options" in proc.stdout and "Excluded" in proc.stdout


def test_policy_flags_filter_and_name_the_emptying_constraint(
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = plan_json(capsys, "--workload", "chat", "--jurisdictions", "EU", *FAST)
    assert data["options"] and all(o["kind"] == "self-hosted" for o in data["options"])
    assert {o["cost"]["gpu_price"]["region"] for o in data["options"]} == {"eu-north-1"}
    data = plan_json(capsys, "--workload", "chat", "--certifications", "hipaa-baa", *FAST)
    assert data["options"] == []
    assert data["nothing_meets"]["emptied_by"] == "policy: certification hipaa-baa"
    data = plan_json(capsys, "--workload", "chat", "--self-hosted-only", *FAST)
    assert data["options"] and all(o["managed"] is None for o in data["options"])


def test_nothing_meets_the_slo_is_an_answer_with_the_closest() -> None:
    proc = run("plan", "--workload", "chat", "--slo-tpot-ms", "1", *FAST)
    assert proc.returncode == 0, proc.stderr
    assert "No option satisfies every constraint" in proc.stdout
    assert "emptied by: SLO" in proc.stdout and "Closest:" in proc.stdout


def test_config_file_and_price_overrides(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text(
        "gpu_prices:\n"
        "  - {provider: hyperstack, gpu: h200_sxm, usd_per_gpu_hour: 1.5, note: negotiated}\n"
        "api_prices:\n"
        "  - {provider: wafer, model: GLM-5.1, input_usd_per_mtok: 9, output_usd_per_mtok: 9}\n"
    )
    config = tmp_path / "plan.yaml"
    config.write_text(
        "workload: {preset: chat, max_output_tokens: 8192}\n"
        "volume: {requests_per_day: 50000, peak_to_average: 3}\n"
        "slo: {ttft_p99_ms: 3000, min_tokens_per_s: 25}\n"
        f"prices: {prices}\n"
        "search: {gpus: [h200_sxm], nodes: [1], engines: [vllm], mtp: [1], "
        "disaggregation: false, simulate: false}\n"
    )
    data = plan_json(
        capsys, "--config", str(config), "--no-progress", "--requests-per-day", "80000"
    )
    assert data["volume"]["requests_per_day"] == 80000  # the flag wins
    assert data["volume"]["peak_to_average"] == pytest.approx(3.0)
    assert data["slo"]["tpot_p99_ms"] == pytest.approx(40.0)  # 25 tok/s per user
    assert data["workload"]["max_output_tokens"] == 8192
    assert any(
        "hyperstack h200_sxm" in line and "-> $1.5" in line for line in data["overridden_prices"]
    )
    assert any(line.startswith("wafer GLM-5.1") for line in data["overridden_prices"])
    own = next(o for o in data["options"] if o["kind"] == "self-hosted")
    assert own["cost"]["gpu_price"] == own["cost"]["gpu_price"] | {
        "provider": "hyperstack",
        "usd_per_gpu_hour": 1.5,
        "overridden": True,
    }


def test_volume_in_tokens_per_day(capsys: pytest.CaptureFixture[str]) -> None:
    data = plan_json(capsys, "--workload", "rag", "--tokens-per-day", "2e9", *FAST)
    assert data["volume"]["tokens_per_day"] == pytest.approx(2e9)
    per_request = data["workload"]["mean_input_tokens"] + data["workload"]["mean_output_tokens"]
    assert data["volume"]["requests_per_day"] == pytest.approx(2e9 / per_request, rel=1e-3)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--workload", "batch"], "unknown workload preset 'batch'"),
        (["--self-hosted-only", "--gpu-clouds", "none"], "contradictory policy"),
        (["--self-hosted-only", "--providers", "wafer"], "contradictory policy"),
        (["--gpu-clouds", "azure,moon"], "unknown cloud(s) moon"),
        (["--jurisdictions", "Europe"], "not an ISO 3166"),
        (["--certifications", "fedramp"], "unknown certification"),
        (["--requests-per-day", "100", "--tokens-per-day", "5"], "not both"),
        (["--weights", "fp16"], "unknown format"),
        (["--prices", "/nonexistent/prices.yaml"], "cannot read --prices"),
        (["--budget", "-3"], "must be positive"),
        (["--providers", "acme"], "unknown provider(s) acme"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    args: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", "--no-progress", *args]) == 2
    err = capsys.readouterr().err
    assert needle in err
    assert len(err.strip().splitlines()) == 1


def test_bad_input_from_a_real_process() -> None:
    proc = run("plan", "--workload", "batch")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("moerun: error: unknown workload preset 'batch'")


def test_fit_table_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fit-table", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = {(r["gpu"], r["num_gpus"], r["weights"]): r for r in data["rows"]}
    assert rows[("h200_sxm", 8, "fp8")]["fits"]
    assert not rows[("h100_sxm", 8, "fp8")]["fits"]
    assert rows[("h100_sxm", 16, "fp8")]["fits"]
    assert all(r["reason"] for r in data["rows"] if not r["fits"])


def test_a_contract_you_hold_can_satisfy_hipaa(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text(
        "gpu_prices:\n"
        "  - {provider: onprem, gpu: h200_sxm, usd_per_gpu_hour: 2.5, pricing: reserved,\n"
        "     jurisdiction: [DE], certifications: {hipaa-baa: verified},\n"
        "     num_gpus_per_instance: 8, note: own racks}\n"
    )
    data = plan_json(
        capsys,
        "--workload",
        "chat",
        "--certifications",
        "hipaa-baa",
        "--jurisdictions",
        "EU",
        "--prices",
        str(prices),
        *FAST,
    )
    assert data["options"], data["nothing_meets"]
    top = data["options"][0]
    assert top["kind"] == "self-hosted" and top["cost"]["gpu_price"]["provider"] == "onprem"
    assert any("reserved pricing is paid whether used or not" in n for n in top["notes"])
    assert any("onprem h200_sxm reserved: added" in line for line in data["overridden_prices"])
    assert {o["cost"]["gpu_price"]["provider"] for o in data["options"]} == {"onprem"}
