"""SGLang's scheduler as its source has it, checked step by step (submit, step, assert) on a
small replica whose expected schedule is worked out by hand in each test."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from moerun.catalog.gpus import get_gpu
from moerun.core.deploy.engine import Admission, RunningRequestsRule
from moerun.core.deploy.mtp import MTP_OFF, Mtp
from moerun.core.load.workload import Arrival, LengthDist, Workload
from moerun.core.perf.step_time import StepModel, StepParams
from moerun.core.sim.build import SimOptions, build_replica, simulate_deployment
from moerun.core.sim.engine import (
    EngineConfig,
    EngineReplica,
    SimRequest,
)
from moerun.core.sim.remaining import ClippedRemaining
from tests.conftest import make_deployment

PARAMS = StepParams(
    gemm_efficiency=0.3, mem_efficiency=0.8, attn_efficiency=0.3, step_overhead_s=0.01
)


def replica(
    *,
    kv: int = 1000,
    chunk: int = 100,
    init: float = 0.5,
    clip: int = 300,
    mixed: bool = False,
    prefill_cap: int | None = None,
) -> EngineReplica:
    """A prefill-first replica with a 1,000-token KV pool, no MTP, 1-token pages. The ratio
    decays from `init` to init x 0.2 over 4 decode steps; retraction adds 2 steps a request."""
    dep = make_deployment("glm-5.1-fp8", engine="sglang", mtp=MTP_OFF)
    config = EngineConfig(
        policy="prefill_first",
        max_num_batched_tokens=chunk,
        max_num_seqs=8,
        kv_capacity_tokens=kv,
        page_tokens=1,
        max_context=10_000,
        prefix_caching=False,
        admission=Admission(
            init=init,
            min_factor=0.2,
            decay_steps=4,
            retract_decode_steps=2,
            clip_max_new_tokens=clip,
        ),
        mixed_chunk=mixed,
        max_prefill_tokens=prefill_cap,
    )
    return EngineReplica(StepModel(dep, PARAMS), config)


def req(rid: int, prompt: int, out: int) -> SimRequest:
    return SimRequest(rid, ((f"p{rid}", prompt),), out, 0.0)


def test_admission_reserves_the_running_requests_expected_output() -> None:
    rep = replica()
    rep.submit(req(0, 100, 600))
    first = rep.step(0.0)
    assert first.batch.prefill_tokens == 100 and first.first_token == (0,)
    # A has 599 tokens to go, capped at 300, x ratio 0.5 = 150 reserved: 1000 - 100 - 150 =
    # 750 left, and B needs its prompt 500 + min(500, 300) = 800: not admitted
    rep.submit(req(1, 500, 500))
    second = rep.step(1.0)
    assert second.batch.prefill_tokens == 0 and second.batch.decode_seqs == 1
    assert rep.batch_is_full
    assert rep.new_token_ratio == pytest.approx(0.4)  # decays (0.5 - 0.1) / 4 per step
    # with a ratio of 0.25 the reserve is 75, 825 > 800 are left: admitted, chunked at 100
    loose = replica(init=0.25)
    loose.submit(req(0, 100, 600))
    loose.step(0.0)
    loose.submit(req(1, 500, 500))
    step = loose.step(1.0)
    assert step.batch.prefill_tokens == 100 and step.batch.decode_seqs == 0


def test_mixed_chunks_run_the_decodes_in_the_prefill_batch_on_their_budget() -> None:
    # SGLang --enable-mixed-chunk: PrefillAdder(mixed_with_decode_tokens=running_bs) takes one
    # token per running request from the chunk, then mix_with_running adds the decodes
    for mixed in (False, True):
        rep = replica(init=0.1, mixed=mixed)
        for rid in (0, 1, 2):
            rep.submit(req(rid, 30, 50))
        first = rep.step(0.0)  # 3 x 30 = 90 tokens fit the chunk of 100
        assert first.batch.prefill_tokens == 90 and first.batch.decode_seqs == 0
        rep.submit(req(3, 200, 50))
        step = rep.step(1.0)
        if mixed:
            # 100 - 3 running = 97 tokens of the new prompt, and the 3 decodes in one step
            assert step.batch.prefill_tokens == 97 and step.batch.decode_seqs == 3
            assert rep.new_token_ratio == pytest.approx(0.1)  # decays on decode batches only
            nxt = rep.step(2.0)
            assert nxt.batch.prefill_tokens == 97 and nxt.batch.decode_seqs == 3
            last = rep.step(3.0)  # 6 left; the prompt ends here and its first token is sent
            assert last.batch.prefill_tokens == 6 and last.first_token == (3,)
        else:
            # prefill-first: the whole chunk goes to the prompt and the decodes wait
            assert step.batch.prefill_tokens == 100 and step.batch.decode_seqs == 0
            assert rep.step(2.0).batch.prefill_tokens == 100
            assert rep.step(3.0).batch.decode_seqs == 4


def test_the_prefill_token_cap_stops_a_batch_after_its_first_request() -> None:
    # SGLang --max-prefill-tokens: a request whose prompt is >= what is left of the cap waits
    # for the next batch, unless it would be the batch's first
    rep = replica(chunk=500, prefill_cap=100)
    for rid in (0, 1, 2):
        rep.submit(req(rid, 60, 10))
    assert rep.step(0.0).batch.prefill_tokens == 60  # 60 >= 100 - 60: the second waits
    assert rep.step(1.0).batch.prefill_tokens == 60
    capped = replica(chunk=500, prefill_cap=100)
    capped.submit(req(0, 150, 10))
    capped.submit(req(1, 20, 10))
    # the first request passes the cap alone; nothing is left of it for the second
    assert capped.step(0.0).batch.prefill_tokens == 150
    assert capped.step(1.0).batch.prefill_tokens == 20
    edge = replica(chunk=500, prefill_cap=120)
    for rid in (0, 1):
        edge.submit(req(rid, 60, 10))
    assert edge.step(0.0).batch.prefill_tokens == 60  # 60 >= 120 - 60: SGLang's >= waits
    roomy = replica(chunk=500, prefill_cap=130)
    for rid in (0, 1, 2):
        roomy.submit(req(rid, 60, 10))
    assert roomy.step(0.0).batch.prefill_tokens == 120  # 60 < 130 - 60 = 70: two fit


def test_mixed_chunks_and_the_prefill_cap_are_sglang_flags() -> None:
    vllm = make_deployment("glm-5.1-fp8", engine="vllm", mtp=MTP_OFF)
    with pytest.raises(ValueError, match="SGLang"):
        replace(vllm, mixed_chunk=True)
    with pytest.raises(ValueError, match="SGLang"):
        replace(vllm, max_prefill_tokens=4000)
    dep = make_deployment("glm-5.1-fp8", engine="sglang", mtp=MTP_OFF)
    built = build_replica(replace(dep, mixed_chunk=True, max_prefill_tokens=4000))
    assert built.config.mixed_chunk and built.config.max_prefill_tokens == 4000
    assert not build_replica(dep).config.mixed_chunk
    # SGLang turns mixed chunks off under EAGLE (MTP) speculative decoding
    eagle = replace(dep, mtp=Mtp.drafting(1, 0.7), mixed_chunk=True)
    assert not build_replica(eagle).config.mixed_chunk


def test_a_full_batch_tries_no_prefill_until_a_request_leaves() -> None:
    rep = replica()
    rep.submit(req(0, 100, 600))
    rep.step(0.0)
    rep.submit(req(1, 500, 500))
    t = 1.0
    for _ in range(10):
        rep.step(t)
        t += 1.0
    # the ratio is at its floor 0.1 (30 tokens reserved, B would fit), but the batch stays
    # full: SGLang retries admission only when the running batch shrinks
    assert rep.new_token_ratio == pytest.approx(0.1)
    assert rep.num_waiting == 1 and rep.num_running == 1
    while True:
        report = rep.step(t)
        t += 1.0
        if report.finished:
            break
    assert [f[0] for f in report.finished] == [0] and not rep.batch_is_full
    after = rep.step(t)
    assert after.batch.prefill_tokens == 100 and after.batch.decode_seqs == 0


def test_retraction_takes_the_fewest_outputs_then_the_longest_prompt_to_the_back() -> None:
    # clip 10: new requests reserve only 10 output tokens, so both fit at admission and the
    # decode outgrows the pool. A (400) and B (350) hold 750 tokens and grow 2 per decode
    # step: after 124 steps 2 are free, after 125 none, so the 126th decode step retracts.
    rep = replica(chunk=1000, init=0.01, clip=10)
    rep.submit(req(0, 400, 300))
    rep.submit(req(1, 350, 300))
    first = rep.step(0.0)
    assert first.batch.prefill_tokens == 750 and sorted(first.first_token) == [0, 1]
    t, steps = 1.0, 0
    while True:
        report = rep.step(t)
        t += 1.0
        if report.preempted:
            break
        steps += 1
    assert steps == 125
    # equal outputs (126 each): the longer prompt, A, goes, though it was admitted first
    assert report.preempted == (0,) and report.batch.decode_seqs == 1
    assert [r.req.request_id for r in rep.waiting] == [0]
    # B survives: (126 decoded + 2 steps x 1 request) / (300 max new + 1)
    assert rep.new_token_ratio == pytest.approx(128 / 301)
    # A must recompute 400 + 126 = 526 tokens; 1000 - 350 - 127 = 523 are left: it waits
    nxt = rep.step(t)
    assert nxt.batch.prefill_tokens == 0 and nxt.batch.decode_seqs == 1


def test_clipped_remaining_sums_by_hand() -> None:
    rem = ClippedRemaining(tokens_per_step=2.0, clip=100)
    rem.add(1, 50, step=0)  # 50 - 2s
    rem.add(2, 300, step=0)  # capped at 100 until 300 - 2s <= 100, at step 100
    assert rem.total(0) == pytest.approx(150)
    assert rem.total(10) == pytest.approx(30 + 100)
    rem.remove(1)  # finished at step 25
    assert rem.total(100) == pytest.approx(100)
    assert rem.total(110) == pytest.approx(80)
    rem.remove(2)
    rem.add(2, 500, step=110)  # a second decode run: the old crossing must not apply
    assert rem.total(120) == pytest.approx(100)


def test_running_request_limit_follows_sglang_source() -> None:
    rule = RunningRequestsRule(
        speculative=48, per_context_length=512, floor=2048, ceiling=4096, kv_token_share=0.5
    )
    # int(328576 / 202752 * 512) = 829, clamped up to 2048, under 328576 // 2
    assert rule.per_rank(328_576, 202_752, dp=1, mtp=False) == 2048
    # a small pool: min(2048, 3000 // 2)
    assert rule.per_rank(3_000, 202_752, dp=1, mtp=False) == 1500
    # a large one: int(4_000_000 / 65536 * 512) = 31250, clamped to 4096
    assert rule.per_rank(4_000_000, 65_536, dp=1, mtp=False) == 4096
    # speculative decoding: 48 in all, split over attention-DP workers
    assert rule.per_rank(328_576, 202_752, dp=1, mtp=True) == 48
    assert rule.per_rank(328_576, 202_752, dp=8, mtp=True) == 6


def test_engine_batch_defaults_by_gpu() -> None:
    vllm = make_deployment("glm-5.1-fp8")
    sglang = make_deployment("glm-5.1-fp8", engine="sglang")
    expected = {
        # vLLM: >= 70 GiB and not an A100 -> 8192 tokens, 1024 sequences; else 2048, 256
        ("vllm", "h200_sxm"): (8192, 1024),
        ("vllm", "b200_sxm"): (8192, 1024),
        ("vllm", "a100_sxm"): (2048, 256),
        ("vllm", "l40s"): (2048, 256),
        # SGLang: chunk 8192 below 160 GiB (H100, H200), 16384 above (B200, MI300X), 4096
        # from 35 GiB (L40S); the sequence cap comes from memory
        ("sglang", "h200_sxm"): (8192, None),
        ("sglang", "b200_sxm"): (16384, None),
        ("sglang", "mi300x"): (16384, None),
        ("sglang", "l40s"): (4096, None),
    }
    for (engine, gpu), (tokens, seqs) in expected.items():
        dep = replace(vllm if engine == "vllm" else sglang, gpu=get_gpu(gpu))
        assert (dep.batched_tokens, dep.default_max_num_seqs) == (tokens, seqs), (engine, gpu)


def test_sglang_with_mtp_runs_48_requests_unless_told() -> None:
    dep = make_deployment("glm-5-fp8", engine="sglang", mtp=Mtp(3), kv_dtype="bf16")
    assert build_replica(dep).max_seqs == 48
    assert build_replica(replace(dep, max_num_seqs=100)).max_seqs == 100


def test_saturation_comes_from_admission_when_the_kv_cannot_hold_the_clients() -> None:
    # 8x H200 GLM-5-FP8, bf16 KV: about 329k tokens. Each 1024/8192 request reserves its
    # prompt + 4096 (the clip): 32 clients need 164k and all run; 64 need 328k, which the
    # running requests' reserve does not leave, so clients queue for a finish.
    dep = make_deployment("glm-5-fp8", engine="sglang", kv_dtype="bf16", mem_fraction=0.85)

    def ttft_ms(conc: int) -> float:
        wl = Workload.single_turn(
            input_len=LengthDist("uniform", 1024, 819, 1024),
            output_len=LengthDist("uniform", 8192, 6553, 8192),
            num_requests=2 * conc,
            arrival=Arrival("closed", concurrency=conc),
            rng=random.Random(0),
        )
        s = simulate_deployment(dep, wl, SimOptions(params=PARAMS)).summary()
        return float(s["ttft_ms"]["mean"])  # type: ignore[index]

    assert ttft_ms(64) > 10 * ttft_ms(32)


def test_vllm_preempts_the_newest_to_the_front_by_contrast() -> None:
    # the same pool and requests as the retraction test, scheduled as vLLM v1: A (400) and
    # B (350) are admitted FCFS within the 1000-token budget; when the decodes outgrow the
    # pool the most recently admitted, B, is preempted and waits at the front of the queue
    dep = make_deployment("glm-5.1-fp8", mtp=MTP_OFF)
    config = EngineConfig(
        policy="mixed",
        max_num_batched_tokens=1000,
        max_num_seqs=8,
        kv_capacity_tokens=1000,
        page_tokens=1,
        max_context=10_000,
        prefix_caching=False,
    )
    rep = EngineReplica(StepModel(dep, PARAMS), config)
    rep.submit(req(0, 400, 300))
    rep.submit(req(1, 350, 300))
    rep.submit(req(2, 100, 10))
    first = rep.step(0.0)
    assert first.batch.prefill_tokens == 850  # A, B and C fit the budget and the pool
    t = 1.0
    while True:
        report = rep.step(t)
        t += 1.0
        if report.preempted:
            break
    assert report.preempted == (1,)  # the newest still running (C has finished)
    assert [r.req.request_id for r in rep.waiting] == [1]


def test_mtp_spreads_the_finishing_steps_of_equal_requests() -> None:
    # 3 drafts accepted with 0.85 each until the first miss: a step emits 1..4 tokens with
    # P = .15, .1275, .108375, .614125: mean 3.186625, variance 11.461375 - 3.186625^2 =
    # 1.3068. 999 tokens take 999 / 3.1866 = 313.5 steps, spread sqrt(999 x 1.3068 /
    # 3.1866^3) = 6.35 steps: equal requests do not all finish in one step, as in the engine.
    assert Mtp.drafting(3, 0.85).tokens_per_step_variance == pytest.approx(1.30679, abs=1e-4)
    assert Mtp.drafting(0, 0.85).tokens_per_step_variance == 0.0

    def finish_steps(mtp: int, pinned: bool = False) -> list[int]:
        dep = make_deployment("glm-5.1-fp8", engine="sglang", mtp=Mtp.drafting(mtp, 0.85, pinned))
        rep = EngineReplica(
            StepModel(dep, PARAMS),
            EngineConfig(
                policy="prefill_first",
                max_num_batched_tokens=100_000,
                max_num_seqs=64,
                kv_capacity_tokens=1_000_000,
                page_tokens=1,
                max_context=10_000,
                prefix_caching=False,
                admission=Admission(0.7, 0.14, 600, 20, 4096),
            ),
        )
        for i in range(64):
            rep.submit(req(i, 100, 1000))
        ends: list[int] = []
        step, t = 0, 0.0
        while rep.busy:
            report = rep.step(t)
            t += 1.0
            step += 1
            ends += [step] * len(report.finished)
        assert len(ends) == 64
        return ends

    plain = finish_steps(0)
    assert len(set(plain)) == 1  # no drafts: equal requests finish together
    spread = finish_steps(3)
    mean = sum(spread) / 64
    sd = (sum((x - mean) ** 2 for x in spread) / 63) ** 0.5
    assert mean == pytest.approx(1 + 999 / 3.186625, abs=3)  # the prefill step, then decodes
    assert 3.5 < sd < 10
    # acceptance pinned by the engine (SGLANG_SIMULATE_ACC_LEN): one accept length per verify
    # step for the whole batch, so equal requests that decode together finish together, in
    # 1 prefill step + ceil(999 / 3.186625) = 314 decode steps
    assert Mtp.drafting(3, 0.85, pinned=True).tokens_per_step_variance == 0.0
    assert finish_steps(3, pinned=True) == [1 + 314] * 64
