"""`moerun bench` against `moerun emulate --time-scale X` over 127.0.0.1 reports emulated time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from moerun.cli import main
from moerun.serve.emulator.app import build_emulator
from tests.serve.emulator_helpers import MODEL, emulator_server, glm5_on_h200

LOAD = ["--request-rate", "2", "--isl", "1500", "--osl", "60", "--num-requests", "30"]
DEP = ["--gpu", "h200_sxm", "--num-gpus", "8", "--tp", "8"]


def test_bench_reads_the_time_scale(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from moerun.catalog.perf.calibration import calibration_for
    from moerun.core.sim.build import SimOptions

    dep = glm5_on_h200()
    options = SimOptions(params=calibration_for(dep.gpu.id, dep.engine.name).params)
    app = build_emulator(dep, served_model=MODEL, options=options, time_scale=5.0)
    with emulator_server(app) as srv:
        code = main(["bench", srv.url, *LOAD, *DEP, "--compare-sim", "--json", "--no-progress",
                     "--output", str(tmp_path / "r.json")])  # fmt: skip
    assert code == 0
    s = json.loads(capsys.readouterr().out)
    p = s["predicted"]
    assert s["num_completed"] == 30
    # the schedule ran 5x faster and the times were scaled back: a 15 s load, emulated
    assert s["duration_s"] == pytest.approx(p["duration_s"], rel=0.1)
    assert s["output_tok_per_s"] == pytest.approx(p["output_tok_per_s"], rel=0.1)
    assert s["ttft_ms"]["p50"] == pytest.approx(p["ttft_ms"]["p50"], rel=0.25)


def test_compare_sim_predicts_with_the_emulators_mtp_acceptance(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `moerun emulate --mtp 1` drafts at the catalog's acceptance for real text (it answers
    # whatever clients send); `--workload fixed` is priced with the random-prompt acceptance
    # (0.21 against 0.91 for GLM-5.1): without the card's acceptance, compare-sim predicted
    # TPOT p50 52 ms where the emulator decodes at 32 ms
    from moerun.catalog.perf.mtp import acceptance_for
    from moerun.cli import build_parser
    from moerun.commands.emulate import emulator_from_args

    flags = ["--model", "glm-5.1", "--gpu", "h200_sxm", "--num-gpus", "8", "--mtp", "1"]
    args = build_parser().parse_args(["emulate", *flags, "--time-scale", "5"])
    app, _ = emulator_from_args(args)
    text = acceptance_for("glm-5.1", "text", 1)
    assert text is not None
    with emulator_server(app) as srv:
        code = main(["bench", srv.url, *LOAD, *flags, "--compare-sim", "--json", "--no-progress",
                     "--output", str(tmp_path / "r.json")])  # fmt: skip
    assert code == 0
    s = json.loads(capsys.readouterr().out)
    p = s["predicted"]
    assert s["tpot_ms"]["p50"] == pytest.approx(p["tpot_ms"]["p50"], rel=0.1)
    assert s["output_tok_per_s"] == pytest.approx(p["output_tok_per_s"], rel=0.1)
    # the results file says which acceptance the prediction assumed
    assert json.loads((tmp_path / "r.json").read_text())["mtp_acceptance"] == text.value
