"""`moerun emulate` and `moerun bench --compare-sim` / `moerun calibrate` on the same flags price
the same deployment: what the emulator measures, compare-sim predicts, and calibrate refits on
the layout the emulator served with (issue 15: without layout flags compare-sim and calibrate
took tensor parallelism over the node while `emulate` ran the default layout, DP8 x EP8)."""

from __future__ import annotations

import argparse
import asyncio
import json
import random
from pathlib import Path
from typing import Any

import pytest

from moerun.bench.asgi import AsgiTransport
from moerun.bench.prompts import PromptText
from moerun.bench.records import summarize_records
from moerun.bench.runner import BenchConfig, LoadGenerator
from moerun.cli import build_parser, main
from moerun.commands.calibration_inputs import load_runs
from moerun.commands.emulate import emulator_from_args
from moerun.core.deploy.parallel import Parallel
from moerun.core.load.workload import Arrival, LengthDist, Workload
from moerun.serve.emulator.clock import ScaledClock, run_virtual

DEP = ["--model", "glm-5.1", "--gpu", "h200_sxm", "--num-gpus", "8"]
ISL, OSL, NUM_REQUESTS = 512, 64, 32


def emulate(flags: list[str], clock: ScaledClock | None = None) -> tuple[Any, Any]:
    """What `moerun emulate FLAGS` serves (on `clock`), and its layout."""
    return emulator_from_args(build_parser().parse_args(["emulate", *flags]), clock)


def measure(flags: list[str], concurrency: int) -> dict[str, Any]:
    """A closed loop of fixed lengths against that emulator, on virtual time (exact timing)."""
    wl = Workload.single_turn(
        input_len=LengthDist.fixed(ISL),
        output_len=LengthDist.fixed(OSL),
        num_requests=NUM_REQUESTS,
        arrival=Arrival("closed", concurrency=concurrency),
        rng=random.Random(0),
    )

    async def run() -> dict[str, Any]:
        app, _ = emulate(flags, ScaledClock(1.0, source=asyncio.get_running_loop().time))
        t = AsgiTransport(app)
        out = await LoadGenerator(t, BenchConfig("glm-5.1"), PromptText(), now=t.now).run(wl)
        app.stop()
        assert all(r.ok for r in out.records)
        return summarize_records(out.records, num_gpus=8)

    return run_virtual(run())


def vllm_result(concurrency: int) -> dict[str, Any]:
    """A `vllm bench serve --save-detailed` file of that load (its metrics are not compared)."""
    keys = ("ttft", "tpot", "itl", "e2el")
    metrics = {f"{s}_{k}_ms": 1.0 for k in keys for s in ("mean", "median", "std", "p99")}
    return {
        "date": "20261204-080000", "backend": "openai-chat", "model_id": "zai-org/GLM-5.1-FP8",
        "num_prompts": NUM_REQUESTS, "request_rate": "inf", "burstiness": 1.0,
        "max_concurrency": concurrency, "duration": 10.0, "completed": NUM_REQUESTS,
        "failed": 0, "total_input_tokens": NUM_REQUESTS * ISL,
        "total_output_tokens": NUM_REQUESTS * OSL, "request_throughput": 3.2,
        "output_throughput": 204.8, "total_token_throughput": 1843.2, **metrics,
        "input_lens": [ISL] * NUM_REQUESTS, "output_lens": [OSL] * NUM_REQUESTS,
    }  # fmt: skip


@pytest.mark.parametrize("layout", [[], ["--tp", "8"]], ids=["default-layout", "tp8"])
def test_compare_sim_predicts_what_the_emulator_measures(
    layout: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    concurrency = 16
    measured = measure([*DEP, *layout], concurrency)
    path = tmp_path / "vllm.json"
    path.write_text(json.dumps(vllm_result(concurrency)))
    capsys.readouterr()
    assert main(["bench", "--import", str(path), *DEP, *layout, "--compare-sim", "--json"]) == 0
    (doc,) = json.loads(capsys.readouterr().out)
    predicted = doc["predicted"]
    # the emulator is the simulator on virtual time: the same schedule, to the step
    assert predicted["output_tok_per_s"] == pytest.approx(measured["output_tok_per_s"], rel=0.02)
    for key in ("ttft_ms", "tpot_ms"):
        for q in ("p50", "p99"):
            assert predicted[key][q] == pytest.approx(measured[key][q], rel=0.02), (key, q)


def test_the_layouts_differ_enough_to_tell(capsys: pytest.CaptureFixture[str]) -> None:
    # the check above would not see a wrong layout if the two priced alike: they do not
    args = [*DEP, "--workload", "fixed", "--isl", str(ISL), "--osl", str(OSL)]
    args += ["--concurrency", "16", "--num-requests", str(NUM_REQUESTS), "--json"]
    ttft = {}
    for name, layout in (("default", []), ("tp8", ["--tp", "8"])):
        assert main(["simulate", *args, *layout]) == 0
        ttft[name] = json.loads(capsys.readouterr().out)["ttft_ms"]["p50"]
    assert ttft["tp8"] > 1.5 * ttft["default"]


def test_calibrate_prices_an_import_on_the_emulators_layout(tmp_path: Path) -> None:
    served = emulate(DEP)[1].deployment.parallel
    assert served == Parallel(tp=1, dp=8, ep=8)  # the default rule's layout for GLM-5.1 here
    path = tmp_path / "vllm.json"
    path.write_text(json.dumps(vllm_result(4)))
    ns = argparse.Namespace(
        time_scale=None, model="glm-5.1", gpu="h200_sxm", num_gpus=8, weights="fp8",
        kv_dtype="fp8", engine="vllm", tp=None, dp=None, ep=None, pp=None, mtp=0,
        max_context=None, mem_fraction=None, max_num_batched_tokens=None,
    )  # fmt: skip
    (run,) = load_runs(path, ns)
    assert run.parallel == served
    ns.tp = 8  # a layout given is the layout used
    (run,) = load_runs(path, ns)
    assert run.parallel == Parallel(tp=8)
