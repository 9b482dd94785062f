"""Sweeps against the emulator: every level starts cold, failures exit 2, and `calibrate`
refuses cache hits the workload did not ask for."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from moerun.bench.results import read_results
from moerun.catalog.perf.measurements import load_measurements
from moerun.cli import main
from moerun.errors import CatalogError
from moerun.serve.emulator.app import build_emulator
from moerun.serve.emulator.faults import Faults
from tests.serve.emulator_helpers import MODEL, UvicornThread, glm5_on_h200

SMALL = ["--osl", "4", "--num-requests", "12", "--no-progress"]
DEPLOYMENT = ["--model", "glm-5.1", "--gpu", "h200_sxm", "--num-gpus", "8"]


@pytest.fixture(scope="module")
def emulator() -> Iterator[UvicornThread]:
    """One emulator for the module, 50x faster than real time (its cache persists across
    tests, as a real server's would: each bench run must not find earlier prompts)."""
    app = build_emulator(glm5_on_h200(), served_model=MODEL, time_scale=50.0)
    with UvicornThread(app) as srv:
        yield srv


def _bench(url: str, out: Path, *extra: str) -> int:
    return main(["bench", url, "--isl", "512", *SMALL, "--output", str(out), *extra])


def test_every_level_and_every_run_starts_cold(emulator: UvicornThread, tmp_path: Path) -> None:
    # the same sweep twice against one server: neither a later level nor the second run may
    # find earlier prompts cached (the bug: 99.9% hits from level 2 on)
    for name in ("a.json", "b.json"):
        assert _bench(emulator.url, tmp_path / name, "--sweep-concurrency", "1,4,8") == 0
        runs = read_results(tmp_path / name).runs
        assert len(runs) == 3 and len({r.prompt_salt for r in runs}) == 3
        for run in runs:
            assert run.summary["num_completed"] == 12
            assert run.summary["prefix_cache_hit_rate"] < 0.10
            assert run.summary["workload_prefix_hit_rate"] == 0.0


def test_shared_prefix_hits_are_measured_per_level(emulator: UvicornThread, tmp_path: Path) -> None:
    # 12 requests share one 384-token system prompt: the first computes it, the other 11
    # find it (a page-aligned 384 of 512 prompt tokens): 11/12 * 384/512 = 0.6875 implied
    out = tmp_path / "p.json"
    flags = ["--shared-prefix", "384", "--sweep-concurrency", "1,2"]
    assert _bench(emulator.url, out, *flags) == 0
    for run in read_results(out).runs:
        assert run.summary["workload_prefix_hit_rate"] == pytest.approx(11 / 12 * 384 / 512)
        # concurrency 2 may send the first two together, both missing: one prefix fewer
        low = (10 / 12) * 384 / 512
        assert low - 0.01 <= run.summary["prefix_cache_hit_rate"] <= 11 / 12 * 384 / 512 + 0.01


def test_calibrate_refuses_hits_the_workload_did_not_ask_for(
    emulator: UvicornThread, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.json"
    flags = ["--concurrency", "4", "--prompt-salt", "same", *DEPLOYMENT]
    assert _bench(emulator.url, out, *flags) == 0
    assert _bench(emulator.url, out, *flags) == 0  # the same prompts again: all cached
    run = read_results(out).runs[0]
    assert run.summary["prefix_cache_hit_rate"] > 0.9
    capsys.readouterr()
    assert main(["calibrate", str(out), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "prefix cache served" in err and "asked for none" in err


def test_calibrate_refuses_shared_prefix_runs(tmp_path: Path) -> None:
    doc = {
        "deployment": {"model": "glm-5.1", "gpu": "h200_sxm", "num_gpus": 8},
        "runs": [
            {
                "label": "concurrency 4",
                "workload": {"workload": "fixed", "isl": 512, "osl": 4, "concurrency": 4,
                             "shared_prefix": 384},
                "summary": {"prefix_cache_hit_rate": 0.69, "workload_prefix_hit_rate": 0.69},
            }
        ],
    }  # fmt: skip
    path = tmp_path / "shared.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(CatalogError, match="shares prefixes"):
        load_measurements(path)


def test_nothing_succeeded_exits_2_with_one_line(
    emulator: UvicornThread, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "f.json"
    assert _bench(emulator.url, out, "--served-model", "nosuch") == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.strip().splitlines()
    assert "every request failed (12 of 12)" in line and "HTTP 404" in line and "nosuch" in line
    (run,) = read_results(out).runs  # the results are still written
    assert run.summary["num_failed"] == 12 and not any(r.ok for r in run.records)


def test_some_failed_prints_counts_by_kind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    faults = Faults(error_rate=0.3, drop_rate=0.2, seed=3)
    app = build_emulator(glm5_on_h200(), served_model=MODEL, time_scale=50.0, faults=faults)
    out = tmp_path / "s.json"
    with UvicornThread(app) as srv:
        flags = ["--isl", "64", "--osl", "8", "--num-requests", "40", "--concurrency", "4"]
        code = main(["bench", srv.url, *flags, "--no-progress", "--json", "--output", str(out)])
    assert code == 0
    run = read_results(out).runs[0]
    n_500 = sum(1 for r in run.records if r.status == 500)
    n_drop = sum(1 for r in run.records if not r.ok and r.status != 500)
    assert n_500 and n_drop and n_500 + n_drop < 40
    (line,) = [x for x in capsys.readouterr().err.splitlines() if "failed" in x]
    assert f"{n_500 + n_drop} of 40 requests failed" in line
    assert f"HTTP 500 x{n_500}" in line and f"dropped x{n_drop}" in line
