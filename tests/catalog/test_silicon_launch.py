"""NVIDIA's silicon points run as AIConfigurator's generator launched and measured them
(`validation/silicon_launch.yaml`), and the issue's acceptance on them, guarded.

The launch facts are read here from the YAML text, not through the loader under test; the
errors AIConfigurator's predictions make are computed here from its file. The guard only
notices a regression: the silicon points stay a validation set, fitted by nothing."""

from __future__ import annotations

import random
from importlib import resources
from statistics import median

import pytest
import yaml

from moerun.catalog.perf.aic_predictions import aic_predictions
from moerun.catalog.perf.calibration import calibration_for
from moerun.catalog.perf.kernels import WAVES, parse_silicon_launch, silicon_runs
from moerun.commands.calibrate import model_type
from moerun.commands.calibration_points import point_for
from moerun.core.calibrate.calibration import predict
from moerun.core.load.workload import Arrival, LengthDist, Workload
from moerun.core.sim.build import SimOptions, simulate_deployment
from moerun.errors import CatalogError
from tests.conftest import make_deployment

LAUNCH = "data/validation/silicon_launch.yaml"


def _yaml() -> dict:
    return yaml.safe_load(resources.files("moerun.catalog").joinpath(LAUNCH).read_text())


def test_every_point_runs_with_the_generators_flags_and_client() -> None:
    data = _yaml()
    margin = data["sglang"]["max_prefill_tokens_over_isl"]
    assert margin == 1500 and data["sglang"]["enable_mixed_chunk"] is True
    warm = data["client"]["warmup_requests_per_client"]
    assert "2fc13d121" in data["source"] and data["as_of"] == "2026-03-17"
    runs = silicon_runs()
    assert len(runs) > 100
    for r in runs:
        assert r.engine == "sglang" and r.mixed_chunk, r.id
        assert r.max_prefill_tokens == r.isl + margin, r.id
        assert r.concurrency is not None
        assert r.warmup_requests == warm * r.concurrency, r.id
        assert r.num_prompts == WAVES * r.concurrency, r.id
        assert r.random_range_ratio == 1.0  # fixed lengths: stddev 0
        # SGLang's auto KV dtype: fp8_e4m3 for DSA models (GLM-5 here) on Blackwell, else bf16
        blackwell = r.gpu in ("b200_sxm", "gb200", "b300_sxm")
        assert r.kv_dtype == ("fp8" if r.model == "glm-5-fp8" and blackwell else "bf16"), r.id
    assert set(data["sglang"]["kv_dtype_dsa_fp8_gpus"]) == {"b200_sxm", "gb200", "b300_sxm"}
    assert {r.kv_dtype for r in runs if r.gpu == "b200_sxm" and r.model == "glm-5-fp8"} == {"fp8"}
    # more measured requests per client when asked, never more than the client sent
    assert {r.num_prompts // (r.concurrency or 1) for r in silicon_runs(1000)} == {
        data["client"]["requests_per_client"]
    }


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.pop("sglang"), "sglang"),
        (lambda d: d["client"].update(length_stddev=8), "fixed lengths"),
        (lambda d: d["client"].update(clients_start_together=False), "started together"),
        (lambda d: d["client"].update(requests_per_client=0), "positive"),
        (lambda d: d["sglang"].update(max_prefill_tokens_over_isl="wide"), "wide"),
        (lambda d: d["sglang"].update(kv_dtype_otherwise="int4"), "bf16 or fp8"),
        (lambda d: d["sglang"].pop("kv_dtype_dsa_fp8_gpus"), "kv_dtype_dsa_fp8_gpus"),
    ],
)
def test_a_bad_launch_file_is_refused(edit, message: str) -> None:  # type: ignore[no-untyped-def]
    data = _yaml()
    edit(data)
    with pytest.raises(CatalogError, match=message):
        parse_silicon_launch(yaml.safe_dump(data))


def test_warm_up_requests_are_left_out_of_a_points_metrics() -> None:
    run = next(r for r in silicon_runs() if r.concurrency == 4 and r.isl == 1024)
    cal = calibration_for(run.gpu, run.engine, model_type(run))
    point = point_for(run, SimOptions(params=cal.params), 0.0)
    # 2 x 4 warm-up requests were simulated before the 4 x 4 measured ones
    assert len(point.start) == run.num_prompts == 16
    # the measured ones are those sent after the warm-up: none starts at the first step
    assert point.start.min() > 0
    # by hand: the same closed loop without the warm-up left out has its 8 first requests too
    dep = make_deployment("glm-5.1-fp8", engine="sglang")
    wl = Workload.single_turn(
        input_len=LengthDist.fixed(1024),
        output_len=LengthDist.fixed(64),
        num_requests=24,
        arrival=Arrival("closed", concurrency=4),
        rng=random.Random(0),
    )
    everything = simulate_deployment(dep, wl, SimOptions(), record=True)
    assert everything.trace is not None
    assert sorted(everything.trace.start_step)[:8] == list(range(8))
    assert sum(1 for s in everything.trace.start_step.values() if s == 0) == 4


def _errors(pairs: list[tuple[float, float]]) -> tuple[float, float]:
    """Median absolute % error and the share within 20%."""
    apes = [abs(p - m) / m * 100 for p, m in pairs]
    return median(apes), sum(a <= 20 for a in apes) / len(apes)


@pytest.mark.parametrize("checkpoint", ["zhipuai/GLM-5", "deepseek-ai/DeepSeek-V3"])
def test_h200_silicon_errors_stay_under_aiconfigurators(checkpoint: str) -> None:
    """The issue's acceptance on the H200 SGLang silicon points, each model on its own:
    median TPOT and TTFT errors below AIConfigurator's, at least 60% of TPOTs within 20%."""
    seen, runs = set(), []
    for r in silicon_runs():
        point = (r.isl, r.osl, r.concurrency)
        if r.gpu == "h200_sxm" and r.checkpoint == checkpoint and point not in seen:
            seen.add(point)
            runs.append(r)
    assert len(runs) == 15
    cal = calibration_for("h200_sxm", "sglang", model_type(runs[0]))
    aic = aic_predictions()
    ours_ttft, ours_tpot, aic_ttft, aic_tpot = [], [], [], []
    for r in runs:
        opts = SimOptions(params=cal.params, kv_capacity_factor=cal.kv_capacity_factor)
        pred = predict(point_for(r, opts, 0.0), cal.params)
        m = r.measured
        ours_ttft.append((pred["ttft_p50_ms"], m["ttft_p50_ms"]))
        ours_tpot.append((pred["tpot_p50_ms"], m["tpot_p50_ms"]))
        a = aic[r.id]
        assert a.ttft_ms is not None and a.tpot_ms is not None
        aic_ttft.append((a.ttft_ms, m["ttft_p50_ms"]))
        aic_tpot.append((a.tpot_ms, m["tpot_p50_ms"]))
    (ttft, _), (tpot, within) = _errors(ours_ttft), _errors(ours_tpot)
    (a_ttft, _), (a_tpot, _) = _errors(aic_ttft), _errors(aic_tpot)
    assert ttft < a_ttft, f"TTFT {ttft:.1f}% against AIConfigurator's {a_ttft:.1f}%"
    assert tpot < a_tpot, f"TPOT {tpot:.1f}% against AIConfigurator's {a_tpot:.1f}%"
    assert within >= 0.6, f"{within:.0%} of TPOTs within 20%"
