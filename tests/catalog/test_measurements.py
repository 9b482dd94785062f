"""Measured runs: the catalog CSVs and `moerun bench` results read into one shape."""

from __future__ import annotations

import csv
import io
import json
import re
from importlib import resources
from pathlib import Path

import pytest

from moerun.catalog.perf.measurements import (
    SGLANG_FILES,
    MeasuredRun,
    builtin_measurements,
    catalog_measurements,
    load_measurements,
    parse_csv,
)
from moerun.commands.calibration_points import run_lengths
from moerun.core.deploy.parallel import Parallel
from moerun.errors import CatalogError

SUMMARY = {
    "ttft_ms": {"mean": 1, "p50": 900.0, "p90": 1, "p99": 1200.0},
    "tpot_ms": {"mean": 1, "p50": 26.0, "p90": 1, "p99": 30.0},
    "output_tok_per_s": 230.0,
    "num_requests": 40,
}


def bench_file(tmp_path: Path, **run: object) -> Path:
    data = {
        "schema": "moerun.bench/1",
        "deployment": {
            "model": "glm-5.1-fp8",
            "gpu": "h200_sxm",
            "num_gpus": 8,
            "weights": "fp8",
            "kv_dtype": "fp8",
            "engine": "vllm",
            "tp": None,
            "dp": None,
            "ep": None,
            "pp": None,
            "mtp": 1,
        },
        "runs": [
            {
                "label": "c8",
                "interrupted": False,
                "summary": SUMMARY,
                "workload": {
                    "workload": "fixed",
                    "isl": 2048,
                    "osl": 128,
                    "concurrency": 8,
                    "num_requests": 40,
                },
                **run,
            }
        ],
    }
    path = tmp_path / "res.json"
    path.write_text(json.dumps(data))
    return path


def test_builtin_rows_parse_with_their_layouts() -> None:
    runs = {r.id: r for r in builtin_measurements()}
    assert runs["G5-01"].parallel == Parallel(tp=8) and runs["G5-01"].kv_dtype == "bf16"
    assert runs["Q1-h200_sxm"].parallel == Parallel(tp=1, dp=8, ep=8)
    assert runs["Q1-h200_sxm"].concurrency is None and runs["G5-52"].concurrency == 64


def test_bench_results_become_measured_runs(tmp_path: Path) -> None:
    (run,) = load_measurements(bench_file(tmp_path))
    assert (run.model, run.gpu, run.parallel, run.mtp_tokens) == (
        "glm-5.1-fp8",
        "h200_sxm",
        Parallel(tp=8),
        1,
    )
    assert run.measured["ttft_p50_ms"] == 900.0 and run.measured["output_tok_per_s"] == 230.0
    assert (run.isl, run.osl, run.concurrency, run.kv_dtype) == (2048, 128, 8, "fp8")


def _bench_run(tmp_path: Path, deployment: dict[str, object]) -> MeasuredRun:
    """The one run of a bench result whose deployment has `deployment`'s fields changed."""
    path = bench_file(tmp_path)
    data = json.loads(path.read_text())
    data["deployment"] |= deployment
    path.write_text(json.dumps(data))
    (run,) = load_measurements(path)
    return run


def test_a_bench_result_keeps_the_budget_moerun_deploy_launched(tmp_path: Path) -> None:
    # a bench result describes a moerun deployment: its budget is per DP rank (given, or the
    # engine's default on the GPU: 8192 on H200), and deploy passes SGLang DP times that
    from moerun.commands.calibration_points import deployment_for

    dp8 = {"engine": "sglang", "tp": 1, "dp": 8, "ep": 8}
    cases = [
        ({}, 8192, 8192),  # vLLM TP8: the default, per engine core
        (dp8, 8192 * 8, 8192),  # SGLang DP8: deploy's --chunked-prefill-size 65536
        (dp8 | {"max_num_batched_tokens": 4096}, 4096 * 8, 4096),
    ]
    for extra, flag, per_rank in cases:
        run = _bench_run(tmp_path, extra)
        assert run.max_batched_tokens == flag, extra
        assert deployment_for(run, 0.6).batched_tokens == per_rank, extra


def test_a_bench_result_keeps_the_request_cap_moerun_deploy_launched(tmp_path: Path) -> None:
    # deploy writes vLLM's --max-num-seqs always (the deployment's, else vLLM's 1024 on GPUs of
    # 70 GiB and more) and SGLang's --max-running-requests only when the deployment set one,
    # as its per-rank value times DP; the simulator gives each rank what the engine gives it
    from moerun.commands.calibration_points import deployment_for, requests_per_rank

    dp8 = {"engine": "sglang", "tp": 1, "dp": 8, "ep": 8}
    cases = [
        ({}, 1024, 1024),  # vLLM TP8 on H200: its default, per engine core
        ({"max_num_seqs": 64}, 64, 64),
        (dp8, None, None),  # SGLang sized it from memory
        (dp8 | {"max_num_seqs": 32}, 32 * 8, 32),  # deploy's --max-running-requests 256
    ]
    for extra, flag, per_rank in cases:
        run = _bench_run(tmp_path, extra)
        assert run.max_running_requests == flag, extra
        if per_rank is not None:
            assert requests_per_rank(run, deployment_for(run, 0.6)) == per_rank, extra


def test_interrupted_or_open_loop_runs_are_refused(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="interrupted"):
        load_measurements(bench_file(tmp_path, interrupted=True))
    poisson = {"workload": "fixed", "isl": 10, "osl": 10, "request_rate": 2.0, "concurrency": None}
    with pytest.raises(CatalogError, match="closed-loop"):
        load_measurements(bench_file(tmp_path, workload=poisson))


def test_profile_round_trip_keeps_the_kv_factor(tmp_path: Path) -> None:
    from moerun.catalog.perf.calibration import load_profiles, save_profile
    from moerun.core.calibrate.calibration import CalibrationProfile
    from moerun.core.perf.step_time import StepParams

    prof = CalibrationProfile(
        "g-e", 3, "g", "e", "x", StepParams(), 0.8, ("a",), {}, {}, "d", "s", 0.75
    )
    save_profile(prof, tmp_path)
    (back,) = load_profiles(tmp_path)
    assert back == prof


def test_sglang_cookbook_rows_keep_their_run_configuration() -> None:
    runs = {r.id: r for r in catalog_measurements(SGLANG_FILES)}
    # GLM-5 cookbook, H200: EAGLE 3 steps / 4 draft tokens = 3 drafted tokens, KV not set (bf16),
    # sglang.bench_serving's default range ratio 0.0, printed "Accept length: 3.50".
    gs2 = runs["GS-02"]
    assert (gs2.model, gs2.engine, gs2.parallel, gs2.mtp_tokens) == (
        "glm-5-fp8",
        "sglang",
        Parallel(tp=8),
        3,
    )
    assert (gs2.kv_dtype, gs2.random_range_ratio, gs2.mtp_accept_len) == ("bf16", 0.0, 3.5)
    assert gs2.concurrency == 100 and gs2.measured["ttft_p50_ms"] == 21429.21
    assert gs2.split == "holdout" and runs["GS-01"].split == "fit"
    # DeepSeek-R1-0528 runs are priced as the DeepSeek-V3 architecture, and say so.
    assert runs["DR-01"].model == "deepseek-v3"
    assert runs["DR-01"].checkpoint == "deepseek-ai/DeepSeek-R1-0528"
    assert all(r.source.startswith("SGLang cookbook") for r in runs.values())


def test_a_bad_split_is_refused() -> None:
    header = "id,model,weights,gpu,num_gpus,engine,engine_version,parallelism,mtp_tokens,"
    header += "isl,osl,max_concurrency,num_prompts,source,split\n"
    row = "X,zai-org/GLM-5-FP8,fp8,h200_sxm,8,vllm,v,tp8,0,10,10,1,1,s,train\n"
    with pytest.raises(CatalogError, match="split"):
        parse_csv(header + row, "x.csv")


def test_random_range_ratio_gives_sglang_bench_serving_lengths() -> None:
    # sglang.bench_serving: randint(max(int(L * ratio), 1), L + 1): ratio 0 -> [1, L].
    dist = run_lengths(1000, 0.0)
    assert (dist.kind, dist.low, dist.high) == ("uniform", 1, 1000)
    assert run_lengths(1000, 0.5).low == 500
    assert run_lengths(1000, 1.0).kind == "fixed"


def _launch_row(
    column: str, value: str, parallelism: str, engine: str, gpu: str = "h200_sxm"
) -> str:
    """A one-row measurement CSV whose last column is a launch setting."""
    header = "id,model,weights,gpu,num_gpus,engine,engine_version,parallelism,mtp_tokens,"
    header += f"isl,osl,max_concurrency,num_prompts,source,{column}\n"
    row = f"X,zai-org/GLM-5-FP8,fp8,{gpu},8,{engine},v,{parallelism},0,1024,64,64,128,s,{value}\n"
    return header + row


def _capped(cap: str, parallelism: str = "tp8", engine: str = "sglang") -> str:
    return _launch_row("max_running_requests", cap, parallelism, engine)


def test_a_launch_request_cap_is_read_and_split_as_the_engine_splits_it() -> None:
    from moerun.commands.calibration_points import deployment_for, requests_per_rank

    (tp8,) = parse_csv(_capped("256"), "x.csv")
    (dp8,) = parse_csv(_capped("256", "tp8 dp8 ep8 attention-dp"), "x.csv")
    (vllm,) = parse_csv(_capped("256", "tp1 dp8 ep8", "vllm"), "x.csv")
    (none,) = parse_csv(_capped(""), "x.csv")
    assert (tp8.max_running_requests, none.max_running_requests) == (256, None)
    # SGLang's model_runner: server_args.max_running_requests // dp_size per attention rank
    assert requests_per_rank(tp8, deployment_for(tp8, 0.0)) == 256
    assert requests_per_rank(dp8, deployment_for(dp8, 0.0)) == 32
    # vLLM's --max-num-seqs is per engine core
    assert requests_per_rank(vllm, deployment_for(vllm, 0.0)) == 256
    with pytest.raises(CatalogError, match="max_running_requests"):
        parse_csv(_capped("0"), "x.csv")


def test_a_request_cap_bounds_the_simulated_batch() -> None:
    # 64 clients under a cap of 8: at most 8 sequences ever run; without it, all 64
    from moerun.commands.calibration_points import point_for
    from moerun.core.sim.build import SimOptions

    (capped,) = parse_csv(_capped("8"), "x.csv")
    (free,) = parse_csv(_capped(""), "x.csv")
    peak = []
    for r in (capped, free):
        f = point_for(r, SimOptions(), 0.0).features
        peak.append(float((f["decode_seqs"] + f["prefill_seqs"]).max()))
    assert peak[0] <= 8 < peak[1]


def _mtp_row(pinned: str, accept_len: str = "3.5") -> str:
    header = "id,model,weights,gpu,num_gpus,engine,engine_version,parallelism,mtp_tokens,"
    header += "isl,osl,max_concurrency,num_prompts,source,mtp_accept_len,mtp_accept_pinned\n"
    row = f"X,zai-org/GLM-5-FP8,fp8,h200_sxm,8,sglang,v,tp8,5,8192,1024,16,64,s,{accept_len},"
    return header + row + pinned + "\n"


def test_a_pinned_accept_length_reaches_the_simulated_drafts() -> None:
    from moerun.commands.calibration_points import deployment_for

    (pinned,) = parse_csv(_mtp_row("true"), "x.csv")
    (real,) = parse_csv(_mtp_row(""), "x.csv")
    assert (pinned.mtp_accept_pinned, real.mtp_accept_pinned) == (True, False)
    assert deployment_for(pinned, 0.6).mtp.pinned
    assert deployment_for(pinned, 0.6).mtp.tokens_per_step_variance == 0.0
    assert not deployment_for(real, 0.6).mtp.pinned
    assert deployment_for(real, 0.6).mtp.tokens_per_step_variance > 0.0
    with pytest.raises(CatalogError, match="mtp_accept_pinned"):
        parse_csv(_mtp_row("yes"), "x.csv")
    with pytest.raises(CatalogError, match="mtp_accept_pinned needs"):
        parse_csv(_mtp_row("true", accept_len=""), "x.csv")


def _budgeted(
    flag: str, parallelism: str = "tp8", engine: str = "sglang", gpu: str = "h200_sxm"
) -> str:
    return _launch_row("max_batched_tokens", flag, parallelism, engine, gpu)


def test_a_launch_token_budget_reaches_each_rank_as_the_engine_divides_it() -> None:
    from moerun.commands.calibration_points import deployment_for

    dp8 = "tp8 dp8 ep8 attention-dp"
    cases = {
        # SGLang divides --chunked-prefill-size over its attention-DP ranks
        # (server_args._handle_data_parallelism: chunked_prefill_size // dp_size) ...
        ("32768", dp8, "sglang", "h200_sxm"): 4096,
        # ... its default as well: 8192 on H200 (141 GB), 16384 on B200, then // 8
        ("", dp8, "sglang", "h200_sxm"): 1024,
        ("", dp8, "sglang", "b200_sxm"): 2048,
        # one rank: the flag as given, or the default
        ("32768", "tp8", "sglang", "h200_sxm"): 32768,
        ("", "tp8", "sglang", "h200_sxm"): 8192,
        # vLLM's --max-num-batched-tokens is per engine core (each DP rank)
        ("4096", "tp1 dp8 ep8", "vllm", "h200_sxm"): 4096,
    }
    for (flag, par, engine, gpu), per_rank in cases.items():
        (run,) = parse_csv(_budgeted(flag, par, engine, gpu), "x.csv")
        assert run.max_batched_tokens == (int(flag) if flag else None)
        dep = deployment_for(run, 0.0)
        assert dep.batched_tokens == per_rank, (flag, par, engine, gpu)
        if flag:  # deploy would launch the engine with the flag the run used
            assert dep.batched_tokens_flag == int(flag)
    for bad in ("0", "-8192"):
        with pytest.raises(CatalogError, match="max_batched_tokens"):
            parse_csv(_budgeted(bad), "x.csv")


def test_catalog_rows_keep_the_token_budget_their_launch_commands_set() -> None:
    # InferenceX's scripts pass --chunked-prefill-size 32768 (dsr1_fp8_h200.sh, glm5_fp8_b200*.sh,
    # dsr1_fp8_b200.sh at TP8; 8192 at TP4); the GLM-5.2 balanced recipe (DP8 + EAGLE 1-1-2)
    # passes 32768; the low-latency and high-throughput recipes leave it at the default
    runs = {
        r.id: r
        for f in (
            "deepseek-r1-fp8-8xh200-sglang-inferencex.csv",
            "deepseek-r1-fp8-b200-sglang-inferencex.csv",
            "glm5-fp8-sglang-inferencex.csv",
            "glm52-fp8-8xh200-sglang.csv",
            "glm52-fp8-8xb200-sglang-cookbook.csv",
        )
        for r in catalog_measurements((f,))
    }
    expected = {"IXH-01": 32768, "IXH-10": 32768, "IXB-01": 32768, "IXB-09": 8192}
    expected |= {"GXB-01": 32768, "GXBM-07": 32768, "GXHM-01": None}
    expected |= {"G52S-01": None, "G52S-05": None, "G52B-05": None}
    for rid, r in runs.items():
        if r.id.startswith("G52") and r.parallel.dp > 1:
            # balanced (MTP) rows set 32768; high-throughput (no MTP) rows set nothing
            assert r.max_batched_tokens == (32768 if r.mtp_tokens else None), rid
    for rid, value in expected.items():
        assert runs[rid].max_batched_tokens == value, rid


def test_a_launch_memory_fraction_reaches_the_simulated_kv_capacity(tmp_path: Path) -> None:
    from moerun.commands.calibration_points import deployment_for
    from moerun.core.deploy.memory_fit import memory_fit

    (given,) = parse_csv(_launch_row("mem_fraction", "0.80", "tp8", "sglang"), "x.csv")
    (default,) = parse_csv(_launch_row("mem_fraction", "", "tp8", "sglang"), "x.csv")
    assert (given.mem_fraction, default.mem_fraction) == (0.80, None)
    low, usual = deployment_for(given, 0.0), deployment_for(default, 0.0)
    assert low.effective_mem_fraction == 0.80
    assert usual.effective_mem_fraction == usual.engine.default_mem_fraction == 0.85
    # SGLang's static fraction holds weights and KV: 5% of 141 GB less is 5% of it less KV
    gpu_bytes = low.gpu.memory_bytes
    lost = memory_fit(usual).kv_free_bytes_per_gpu - memory_fit(low).kv_free_bytes_per_gpu
    assert lost == pytest.approx(0.05 * gpu_bytes, rel=0.01)
    for bad in ("0", "1.2", "most"):
        with pytest.raises(CatalogError, match="mem_fraction must be a number in"):
            parse_csv(_launch_row("mem_fraction", bad, "tp8", "sglang"), "x.csv")
    # a bench result keeps the fraction its deployment was launched with
    assert _bench_run(tmp_path, {"mem_fraction": 0.7}).mem_fraction == 0.7
    assert _bench_run(tmp_path, {"mem_fraction": None}).mem_fraction is None


def test_sglang_prefill_launch_flags_are_read_and_reach_the_deployment(tmp_path: Path) -> None:
    from moerun.commands.calibration_points import deployment_for

    (mixed,) = parse_csv(_launch_row("mixed_chunk", "true", "tp8", "sglang"), "x.csv")
    (plain,) = parse_csv(_launch_row("mixed_chunk", "", "tp8", "sglang"), "x.csv")
    (capped,) = parse_csv(_launch_row("max_prefill_tokens", "2524", "tp8", "sglang"), "x.csv")
    assert (mixed.mixed_chunk, plain.mixed_chunk, capped.max_prefill_tokens) == (True, False, 2524)
    assert deployment_for(mixed, 0.0).mixed_chunk and not deployment_for(plain, 0.0).mixed_chunk
    assert deployment_for(capped, 0.0).max_prefill_tokens == 2524
    with pytest.raises(CatalogError, match="mixed_chunk must be 'true' or empty"):
        parse_csv(_launch_row("mixed_chunk", "yes", "tp8", "sglang"), "x.csv")
    with pytest.raises(CatalogError, match="max_prefill_tokens must be positive"):
        parse_csv(_launch_row("max_prefill_tokens", "0", "tp8", "sglang"), "x.csv")
    with pytest.raises(CatalogError, match=r"line 2: .* SGLang flags, not vllm's"):
        parse_csv(_launch_row("mixed_chunk", "true", "tp8", "vllm"), "x.csv")
    with pytest.raises(CatalogError, match=r"run 0: .* SGLang flags, not vllm's"):
        _bench_run(tmp_path, {"engine": "vllm", "max_prefill_tokens": 9})
    # a bench result keeps the flags its deployment was described with
    run = _bench_run(tmp_path, {"engine": "sglang", "mixed_chunk": True, "max_prefill_tokens": 9})
    assert run.mixed_chunk and run.max_prefill_tokens == 9
    assert not _bench_run(tmp_path, {"mem_fraction": None}).mixed_chunk


def test_catalog_rows_keep_the_memory_fraction_their_launch_commands_set() -> None:
    runs = {
        r.id: r
        for f in ("glm52-fp8-8xh200-sglang.csv", "glm52-fp8-8xb200-sglang-cookbook.csv")
        for r in catalog_measurements((f,))
    }
    # as the cookbook cells' launch flags read (the rows' notes quote them)
    expected = {"G52B-01": 0.8, "G52B-03": 0.85, "G52B-05": 0.8, "G52S-01": None, "G52S-05": 0.85}
    for rid, value in expected.items():
        assert runs[rid].mem_fraction == value, rid
    # every row: the fraction its notes quote from the launch command, else none
    root = resources.files("moerun.catalog").joinpath("data/measurements")
    for f in ("glm52-fp8-8xh200-sglang.csv", "glm52-fp8-8xb200-sglang-cookbook.csv"):
        for row in csv.DictReader(io.StringIO(root.joinpath(f).read_text("utf-8"))):
            quoted = re.search(r"--mem-fraction-static ([0-9.]+)", row["dataset"])
            want = float(quoted.group(1)) if quoted else None
            assert runs[row["id"]].mem_fraction == want, row["id"]
