"""The sequence cap and token budget `deploy` launches are the ones simulate and plan price."""

from __future__ import annotations

from dataclasses import replace

import pytest

from moerun.catalog.deploy import load_deploy_facts
from moerun.catalog.flags import flag_versions, load_flags
from moerun.core.deploy.deployment import Deployment
from moerun.core.deploy.parallel import Parallel
from moerun.core.sim.build import build_replica
from moerun.render.engine_args import GroupContext, engine_group
from tests.conftest import make_deployment
from tests.render.factories import checkpoint_bytes


def argv_of(dep: Deployment) -> list[str]:
    facts = load_deploy_facts()
    engine = dep.engine.name
    version = flag_versions(engine)[-1]
    efacts = facts.engines[engine]
    ctx = GroupContext(
        name="glm5",
        role="serve",
        deployment=dep,
        replicas=1,
        version=version,
        flags=load_flags(engine, version),
        facts=efacts,
        image=efacts.image(version) or "",
        checkpoint="zai-org/GLM-5.1-FP8",
        checkpoint_bytes=checkpoint_bytes(),
        served_model_name="zai-org/GLM-5.1-FP8",
        parsers=None,
    )
    return list(engine_group(ctx).head.steps[-1].argv)


def flag(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def test_vllm_is_launched_with_the_sequence_cap_the_simulator_runs() -> None:
    dep = make_deployment("glm-5.1-fp8", engine="vllm")
    argv = argv_of(dep)
    # vLLM's own default on a >= 70 GiB GPU that is not an A100: 1024 sequences, 8192 tokens
    assert flag(argv, "--max-num-seqs") == "1024"
    assert flag(argv, "--max-num-batched-tokens") == "8192"
    assert build_replica(dep).config.max_num_seqs == 1024
    mine = replace(dep, max_num_seqs=300)
    assert flag(argv_of(mine), "--max-num-seqs") == "300"
    assert build_replica(mine).config.max_num_seqs == 300


def test_sglang_gets_a_request_limit_only_when_one_is_set() -> None:
    dep = make_deployment("glm-5.1-fp8", engine="sglang")
    argv = argv_of(dep)
    assert "--max-running-requests" not in argv  # SGLang sizes it from memory, as priced
    assert flag(argv, "--chunked-prefill-size") == "8192"  # its H200 default
    # per attention-DP rank in moerun, for the whole instance in SGLang
    dp = replace(dep, parallel=Parallel(tp=1, dp=8, ep=8), max_num_seqs=32)
    assert flag(argv_of(dp), "--max-running-requests") == "256"
    assert build_replica(dp).config.max_num_seqs == 256


def test_sglang_attention_dp_gets_the_prefill_chunk_the_simulator_gives_each_rank() -> None:
    # SGLang divides --chunked-prefill-size over its attention-DP ranks (server_args
    # _handle_data_parallelism: chunked_prefill_size // dp_size); moerun prices
    # `batched_tokens` per rank, so deploy passes it DP times larger
    dep = make_deployment("glm-5.1-fp8", engine="sglang", parallel=Parallel(tp=1, dp=8, ep=8))
    assert flag(argv_of(dep), "--chunked-prefill-size") == str(8192 * 8)
    assert build_replica(dep).config.max_num_batched_tokens == 8192 * 8  # 8 ranks x 8192
    mine = replace(dep, max_num_batched_tokens=4096)
    assert flag(argv_of(mine), "--chunked-prefill-size") == "32768"
    # two DP ranks of TP4 each: the flag is for the instance too
    half = replace(dep, parallel=Parallel(tp=4, dp=2, ep=8))
    assert flag(argv_of(half), "--chunked-prefill-size") == "16384"
    # vLLM's --max-num-batched-tokens is per engine core (each DP rank): passed as priced
    vdp = make_deployment("glm-5.1-fp8", engine="vllm", parallel=Parallel(tp=1, dp=8, ep=8))
    assert flag(argv_of(vdp), "--max-num-batched-tokens") == "8192"


def test_sglang_attention_dp_admits_with_its_lowered_conservativeness() -> None:
    # with DP attention SGLang multiplies schedule_conservativeness by 0.3: the new-token
    # ratio starts at 0.7 x 0.3 = 0.21 and decays to 0.21 x 0.14 over 600 decode steps
    tp = build_replica(make_deployment("glm-5.1-fp8", engine="sglang")).config.admission
    dep = make_deployment("glm-5.1-fp8", engine="sglang", parallel=Parallel(tp=1, dp=8, ep=8))
    dp = build_replica(dep).config.admission
    assert tp is not None and dp is not None
    assert tp.init == 0.7 and dp.init == pytest.approx(0.21)
    assert dp.minimum == pytest.approx(0.21 * 0.14)
    assert dp.decay == pytest.approx((0.21 - 0.21 * 0.14) / 600)
    assert (dp.decay_steps, dp.clip_max_new_tokens) == (tp.decay_steps, tp.clip_max_new_tokens)


def test_sglang_prefill_flags_are_launched_as_the_simulator_runs_them() -> None:
    dep = make_deployment("glm-5.1-fp8", engine="sglang")
    argv = argv_of(dep)
    assert "--enable-mixed-chunk" not in argv and "--max-prefill-tokens" not in argv
    mine = replace(dep, mixed_chunk=True, max_prefill_tokens=9000)
    argv = argv_of(mine)
    assert "--enable-mixed-chunk" in argv and flag(argv, "--max-prefill-tokens") == "9000"
    config = build_replica(mine).config
    assert config.mixed_chunk and config.max_prefill_tokens == 9000
    # SGLang does not divide --max-prefill-tokens over attention-DP ranks (only the chunk):
    # each of the 8 schedulers admits 9000, and the simulator's one replica 8 x 9000
    dp = replace(mine, parallel=Parallel(tp=1, dp=8, ep=8))
    assert flag(argv_of(dp), "--max-prefill-tokens") == "9000"
    assert build_replica(dp).config.max_prefill_tokens == 72000
