"""The published measurement files themselves: every row sourced and dated, every file
described in the README, columns as the loader expects, and each run's numbers consistent
with one another (a closed loop of C clients obeys Little's law)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from importlib import resources

import pytest

from moerun.catalog.perf.measurements import catalog_measurements

ROOT = resources.files("moerun.catalog").joinpath("data/measurements")
FILES = sorted(p.name for p in ROOT.iterdir() if p.name.endswith(".csv"))
README = ROOT.joinpath("README.md").read_text("utf-8")
# What a source reports when it prints no median (InferenceX publishes run means).
MEAN_COLUMNS = ["ttft_mean_ms", "tpot_mean_ms"]
# the launch command's request cap and token budget, where it set them (empty: the engine's default)
LAUNCH_COLUMNS = ["max_running_requests", "max_batched_tokens"]
PINNED_COLUMNS = ["mtp_accept_pinned"]
# the launch command's static memory fraction, where it set one (empty: the engine's default)
MEM_COLUMNS = ["mem_fraction"]
INFERENCEX_FILES = (
    "deepseek-r1-fp8-8xh200-sglang-inferencex.csv",
    "deepseek-r1-fp8-b200-sglang-inferencex.csv",
    "deepseek-r1-fp8-8xh200-sglang-inferencex-issue870.csv",
)
NEW_FILES = (
    *INFERENCEX_FILES,
    "glm52-fp8-8xh200-sglang.csv",
    "glm52-fp8-8xb200-sglang-cookbook.csv",
    "glm5-fp8-sglang-inferencex.csv",
)
# InferenceX points read off its blog tables: total tok/s/GPU and tok/s/user (1000 / median TPOT).
INFERENCEX_BLOG_FILE = "glm5-fp8-sglang-inferencex.csv"
# A citation: a URL, a repository (at a commit) and a path in it, or a pull request / issue.
CITATION = re.compile(r"https?://|[\w.-]+/[\w.-]+(@[0-9a-f]{7,})? [\w.-]+/|(PR|issue) #\d+")


def rows(name: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(ROOT.joinpath(name).read_text("utf-8"))))


def header(name: str) -> list[str]:
    return ROOT.joinpath(name).read_text("utf-8").splitlines()[0].split(",")


# The columns of the SGLang cookbook files, in order; the files added since carry them exactly.
COLUMNS = header("glm5-fp8-8xh200-sglang.csv")


@pytest.mark.parametrize("name", FILES)
def test_every_row_cites_a_source_and_a_calendar_day(name: str) -> None:
    for row in rows(name):
        assert CITATION.search(row["source"]), (name, row["id"], row["source"])
        day = dt.date.fromisoformat(row["as_of"])
        assert dt.date(2025, 1, 1) <= day <= dt.date(2026, 12, 4), (name, row["id"])


@pytest.mark.parametrize("name", FILES)
def test_the_readme_describes_every_file(name: str) -> None:
    assert f"`{name}`" in README


@pytest.mark.parametrize("name", NEW_FILES)
def test_added_files_keep_the_columns_and_load(name: str) -> None:
    assert header("deepseek-r1-fp8-8xb200-sglang.csv") == COLUMNS and len(COLUMNS) == 32
    cols = header(name)
    assert cols[: len(COLUMNS)] == COLUMNS
    assert cols[len(COLUMNS) :] in (
        [],
        MEAN_COLUMNS,
        LAUNCH_COLUMNS,
        MEAN_COLUMNS + LAUNCH_COLUMNS,
        LAUNCH_COLUMNS + PINNED_COLUMNS,
        LAUNCH_COLUMNS + PINNED_COLUMNS + MEM_COLUMNS,
    )
    runs = catalog_measurements((name,))
    assert len(runs) == len(rows(name)) and len({r.id for r in runs}) == len(runs)
    if "max_running_requests" in cols:
        caps = {r["id"]: int(r["max_running_requests"] or 0) or None for r in rows(name)}
        assert {r.id: r.max_running_requests for r in runs} == caps
    if "mtp_accept_pinned" in cols:
        pinned = {r["id"]: r["mtp_accept_pinned"] == "true" for r in rows(name)}
        assert {r.id: r.mtp_accept_pinned for r in runs} == pinned
    if "mem_fraction" in cols:
        fractions = {r["id"]: float(r["mem_fraction"]) if r["mem_fraction"] else None
                     for r in rows(name)}  # fmt: skip
        assert {r.id: r.mem_fraction for r in runs} == fractions


def test_pinned_acceptance_is_the_launch_environment() -> None:
    # the GLM-5.2 cookbook recipes with EAGLE export SGLANG_SIMULATE_ACC_LEN (3.5 for the
    # low-latency TP8 recipe, 2 for the balanced DP8 one); the high-throughput recipe has no MTP
    for name in ("glm52-fp8-8xh200-sglang.csv", "glm52-fp8-8xb200-sglang-cookbook.csv"):
        for r in rows(name):
            mtp = int(r["mtp_tokens"] or 0)
            assert (r["mtp_accept_pinned"] == "true") == (mtp > 0), (name, r["id"])
            if mtp:
                want = 3.5 if "attention-dp" not in r["parallelism"] else 2.0
                assert float(r["mtp_accept_len"]) == want, (name, r["id"])


def test_request_caps_are_the_launch_commands() -> None:
    # glm5_fp8_b200{,_mtp}.sh: --max-running-requests $CONC; glm5_fp8_h200_mtp.sh sets none
    for row in rows(INFERENCEX_BLOG_FILE):
        assert row["max_running_requests"] == row["max_concurrency"], row["id"]
    # glm-5.2.jsx: the balanced and high-throughput H200 recipes cap at 256, low latency none
    h200 = {r["id"]: r["max_running_requests"] for r in rows("glm52-fp8-8xh200-sglang.csv")}
    assert h200 == {"G52S-01": "", "G52S-02": "256", "G52S-03": "", "G52S-04": "256",
                    "G52S-05": "256"}  # fmt: skip
    # dsr1_fp8_h200.sh: 512 at 1k/1k, 256 otherwise
    for name in ("deepseek-r1-fp8-8xh200-sglang-inferencex.csv",
                 "deepseek-r1-fp8-8xh200-sglang-inferencex-issue870.csv"):  # fmt: skip
        for row in rows(name):
            one_k = (row["isl"], row["osl"]) == ("1024", "1024")
            assert row["max_running_requests"] == ("512" if one_k else "256"), row["id"]


@pytest.mark.parametrize("name", INFERENCEX_FILES)
def test_inferencex_rows_follow_the_official_client(name: str) -> None:
    # benchmark-tmpl.yml: RANDOM_RANGE_RATIO 0.8; the launch scripts: --num-prompts CONC * 10;
    # benchmark_serving.py: random token ids. The site publishes means, not medians.
    for row in rows(name):
        assert float(row["random_range_ratio"]) == 0.8 and row["prompts"] == "random"
        assert int(row["num_prompts"]) == 10 * int(row["max_concurrency"])
        assert row["ttft_mean_ms"] and row["tpot_mean_ms"]
        assert not row["ttft_median_ms"] and not row["tpot_median_ms"]


def test_h200_inferencex_set_holds_out_the_long_input() -> None:
    data = rows("deepseek-r1-fp8-8xh200-sglang-inferencex.csv")
    fit = {(r["isl"], r["max_concurrency"]) for r in data if r["split"] == "fit"}
    held = {(r["isl"], r["max_concurrency"]) for r in data if r["split"] == "holdout"}
    levels = {"4", "8", "16", "32", "64"}
    assert fit == {("1024", c) for c in levels} and held == {("8192", c) for c in levels}


def test_inferencex_blog_rows_follow_the_official_client_and_hold_out() -> None:
    # The same client as the API files; the blog tables give no TTFT and no means, and the
    # throughput is total tok/s, split 1024 : 8192 between output and input. B200 without
    # MTP (GXB) is fitted: against InferenceX's DeepSeek-R1 B200 runs of the same engine and
    # client, it measures GLM-5's per-step residual (architecture_residual.yaml); the rest is
    # held out.
    data = rows(INFERENCEX_BLOG_FILE)
    assert len(data) == 26
    for row in data:
        assert float(row["random_range_ratio"]) == 0.8 and row["prompts"] == "random"
        assert int(row["num_prompts"]) == 10 * int(row["max_concurrency"])
        assert (row["isl"], row["osl"], row["engine_version"]) == ("8192", "1024", "0.5.12")
        split = "fit" if row["id"].startswith("GXB-") else "holdout"
        assert row["split"] == split and row["tpot_median_ms"] and not row["ttft_median_ms"]
        out, inp = float(row["output_tok_per_s"]), float(row["input_tok_per_s"])
        assert inp == pytest.approx(8 * out, abs=0.05)  # both rounded to 0.01
    # No point is one of AIC's silicon rows: those GLM-5 runs are the March images.
    silicon = ROOT.joinpath("../validation/aic_silicon_sample.csv").read_text("utf-8")
    assert "0.5.12" not in {r["engine_version"] for r in csv.DictReader(io.StringIO(silicon))}


def test_the_mi355x_rows_are_the_amd_recipe_as_launched() -> None:
    # glm5-fp8-mi355x-sglang: TP4 on 4 GPUs, --kv-cache-dtype fp8_e4m3, --max-running-requests
    # CONC, no --chunked-prefill-size (the engine default)
    amd = [r for r in rows(INFERENCEX_BLOG_FILE) if r["gpu"] == "mi355x"]
    assert [int(r["max_concurrency"]) for r in amd] == [4, 8, 16, 32, 64, 128, 256]
    for r in amd:
        assert (r["num_gpus"], r["parallelism"], r["kv_dtype"], r["mtp_tokens"]) == (
            "4", "tp4", "fp8", "0")  # fmt: skip
        assert r["max_running_requests"] == r["max_concurrency"] and not r["max_batched_tokens"]
        assert "glm5-fp8-mi355x-sglang" in r["source"] and "sglang-rocm:v0.5.12" in r["source"]
    # the blog prints tok/s/GPU 358.8 at C=4: total 1435.2 over 4 GPUs, 1/9 of it output
    assert float(amd[0]["output_tok_per_s"]) == pytest.approx(358.8 * 4 / 9, abs=0.01)


def test_inferencex_blog_rows_leave_room_for_the_first_token() -> None:
    """Little's law with TTFT >= 0: C clients each emitting n tokens at one per TPOT produce at
    most C n / (TPOT (n - 1)) tokens a second (median TPOT: 5% slack)."""
    for row in rows(INFERENCEX_BLOG_FILE):
        n = 1024 * (1 + 0.8) / 2
        bound = int(row["max_concurrency"]) * n / (float(row["tpot_median_ms"]) / 1000 * (n - 1))
        assert float(row["output_tok_per_s"]) <= bound * 1.05, row["id"]


@pytest.mark.parametrize("name", FILES)
def test_closed_loop_rows_obey_littles_law(name: str) -> None:
    """C clients, each waiting TTFT + TPOT x (n - 1) for n tokens, produce C n / that per
    second: within 5% with run means, 15% with medians (their skew at saturation)."""
    for row in rows(name):
        if not row["max_concurrency"].isdigit() or not row.get("output_tok_per_s"):
            continue
        ttft = row.get("ttft_mean_ms") or row.get("ttft_median_ms")
        tpot = row.get("tpot_mean_ms") or row.get("tpot_median_ms")
        if not (ttft and tpot):
            continue
        ratio = float(row.get("random_range_ratio") or 1.0)
        n = float(row.get("mean_output_len") or int(row["osl"]) * (1 + ratio) / 2)
        per_request_s = (float(ttft) + float(tpot) * (n - 1)) / 1000
        expected = int(row["max_concurrency"]) * n / per_request_s
        tolerance = 0.05 if row.get("tpot_mean_ms") else 0.15
        assert float(row["output_tok_per_s"]) == pytest.approx(expected, rel=tolerance), row["id"]
