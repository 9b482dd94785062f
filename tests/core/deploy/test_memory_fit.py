"""Memory fit: the fact-check verdicts and the layout rules."""

from __future__ import annotations

from dataclasses import replace

import pytest

from moerun.core.deploy.memory_fit import best_layout, memory_fit, stage_layers
from moerun.core.deploy.mtp import Mtp
from moerun.core.deploy.parallel import Parallel, candidate_layouts
from tests.conftest import make_deployment


@pytest.mark.parametrize("gpu", ["h200_sxm", "b200_sxm"])
def test_fp8_fits_one_8gpu_node_of_h200_and_b200(gpu: str) -> None:
    fit = memory_fit(make_deployment(gpu=gpu, num_gpus=8))
    assert fit.fits, fit.reasons
    assert fit.kv_capacity_tokens >= 202_752
    assert fit.max_concurrency_at_context >= 1


def test_fp8_does_not_fit_8x_h100_but_fits_16() -> None:
    fit8 = memory_fit(make_deployment(gpu="h100_sxm", num_gpus=8))
    assert not fit8.fits
    assert any("exceed" in r for r in fit8.reasons)
    assert best_layout(make_deployment(gpu="h100_sxm", num_gpus=8)) is None
    fit16 = memory_fit(make_deployment(gpu="h100_sxm", num_gpus=16))
    assert fit16.fits, fit16.reasons


def test_ten_h100_refused_whatever_the_layout() -> None:
    tp10 = memory_fit(make_deployment(gpu="h100_sxm", num_gpus=10))
    assert not tp10.fits
    assert any("does not divide the 64 attention heads" in r for r in tp10.reasons)
    assert any("whole number" in r for r in tp10.reasons)
    tp2pp5 = memory_fit(make_deployment(gpu="h100_sxm", num_gpus=10, parallel=Parallel(tp=2, pp=5)))
    assert not tp2pp5.fits
    assert any("exceed" in r for r in tp2pp5.reasons)  # no room left for KV
    for par in [*candidate_layouts(10, 8), Parallel(tp=2, pp=5), Parallel(tp=1, pp=10)]:
        dep = make_deployment(gpu="h100_sxm", num_gpus=10, parallel=par)
        assert not memory_fit(dep).fits
    assert best_layout(make_deployment(gpu="h100_sxm", num_gpus=10)) is None


def test_five_a100_refused_whatever_the_layout() -> None:
    for weights in ("fp8", "int4", "bf16"):
        for par in (Parallel(tp=5), Parallel(tp=1, pp=5), Parallel(tp=1, dp=5)):
            dep = make_deployment(gpu="a100_sxm", num_gpus=5, parallel=par, weights=weights)
            fit = memory_fit(dep)
            assert not fit.fits
    fp8 = memory_fit(make_deployment(gpu="a100_sxm", num_gpus=5, parallel=Parallel(tp=1, pp=5)))
    assert any("no FP8 tensor cores" in r for r in fp8.reasons)


def test_kv_capacity_is_budget_minus_weights_over_bytes_per_token() -> None:
    dep = make_deployment(gpu="h200_sxm", num_gpus=8, mem_fraction=0.85)
    fit = memory_fit(dep)
    free = fit.budget_bytes_per_gpu - fit.weights_bytes_per_gpu - fit.reserve_bytes_per_gpu
    assert fit.kv_free_bytes_per_gpu == free
    assert fit.kv_bytes_per_token_per_gpu == 61_464  # MLA is replicated across TP
    tokens = free // 61_464 // 64 * 64
    assert fit.kv_capacity_tokens == tokens
    assert fit.kv_capacity_tokens % 64 == 0
    assert fit.concurrency_at(200_000) == tokens // (-(-200_000 // 64) * 64)


def test_device_memory_is_counted_in_reported_bytes() -> None:
    fit = memory_fit(make_deployment(gpu="h100_sxm", num_gpus=16))
    assert fit.gpu_memory_bytes == 81_559 * 2**20


def test_dp_attention_multiplies_kv_capacity() -> None:
    tp8 = memory_fit(make_deployment(num_gpus=8))
    dp8 = memory_fit(
        make_deployment(num_gpus=8, parallel=Parallel(tp=1, dp=8, ep=8), engine="sglang")
    )
    assert dp8.fits and tp8.fits
    # attention weights are replicated per DP rank, but each rank caches its own sequences
    assert dp8.weights_bytes_per_gpu > tp8.weights_bytes_per_gpu
    assert dp8.kv_capacity_tokens > 3 * tp8.kv_capacity_tokens
    assert dp8.num_kv_ranks == 8


def test_mtp_adds_weights_and_kv() -> None:
    off = memory_fit(make_deployment(num_gpus=8))
    on = memory_fit(make_deployment(num_gpus=8, mtp=Mtp(3)))
    assert on.weights_bytes_per_gpu > off.weights_bytes_per_gpu
    assert on.kv_bytes_per_token_per_gpu == off.kv_bytes_per_token_per_gpu + 656 + 132


def test_layout_rules() -> None:
    def reasons(**kw: object) -> tuple[str, ...]:
        return memory_fit(make_deployment(**kw)).reasons  # type: ignore[arg-type]

    assert any("does not equal" in r for r in reasons(parallel=Parallel(tp=4)))
    assert any("EP 3" in r for r in reasons(num_gpus=6, parallel=Parallel(tp=2, dp=3, ep=3)))
    assert any("FP4" in r for r in reasons(gpu="h200_sxm", weights="nvfp4"))
    assert not reasons(gpu="b200_sxm", weights="nvfp4")
    assert any("no MTP layer" in r for r in reasons(model="qwen3-235b-a22b", mtp=Mtp(2)))
    assert any("exceeds the model" in r for r in reasons(max_context=10**6))


def test_gqa_tp_must_divide_kv_heads_or_be_divided() -> None:
    fit = memory_fit(make_deployment(model="qwen3-235b-a22b", num_gpus=8, parallel=Parallel(tp=8)))
    assert fit.fits, fit.reasons
    bad = memory_fit(make_deployment(model="llama-3.1-70b", num_gpus=6, parallel=Parallel(tp=6)))
    assert any("KV heads" in r or "attention heads" in r for r in bad.reasons)


def test_pipeline_stages_split_layers() -> None:
    assert [len(r) for r in stage_layers(78, 4)] == [20, 20, 19, 19]
    dep = make_deployment(gpu="h100_sxm", num_gpus=16, parallel=Parallel(tp=8, pp=2))
    fit = memory_fit(dep)
    assert fit.fits
    # each stage caches only its own layers
    assert fit.kv_bytes_per_token_per_gpu < 61_464


def test_best_layout_prefers_more_kv_and_whole_nodes() -> None:
    best = best_layout(make_deployment(num_gpus=8))
    assert best is not None
    par, fit = best
    assert par.pp == 1 and fit.fits
    # MLA's KV is replicated across TP: DP-attention ranks each cache their own sequences
    assert par.dp > 1
    assert fit.kv_capacity_tokens > 3 * memory_fit(make_deployment(num_gpus=8)).kv_capacity_tokens
    # H100 (80 GB) needs two nodes; the best layout keeps whole nodes and no pipeline
    best16 = best_layout(make_deployment(gpu="h100_sxm", num_gpus=16))
    assert best16 is not None and best16[0].num_gpus == 16 and best16[1].fits


def test_sglang_static_fraction_leaves_room_for_activations() -> None:
    dep = make_deployment(engine="sglang", mem_fraction=0.999)
    fit = memory_fit(dep)
    assert not fit.fits
    assert any("outside the static pool" in r for r in fit.reasons)
    assert memory_fit(replace(dep, mem_fraction=0.85)).fits


def test_sglang_trtllm_kv_layout_only_on_nvidia_blackwell() -> None:
    assert make_deployment(gpu="b200_sxm", engine="sglang").kv_layout == "fp8_trtllm"
    assert make_deployment(gpu="h200_sxm", engine="sglang").kv_layout == "fp8"
    assert make_deployment(gpu="mi355x", engine="sglang").kv_layout == "fp8"
    assert make_deployment(gpu="b200_sxm", engine="vllm").kv_layout == "fp8"


def test_kv_must_hold_one_max_context_sequence() -> None:
    # vLLM refuses to start when one max-context sequence does not fit in the KV cache: with the
    # pool's capacity C (pages of 64 tokens), a context of C fits and a context one page longer
    # does not, whatever else is free.
    small = memory_fit(make_deployment(mem_fraction=0.72, max_context=4096))
    assert small.fits
    cap = small.kv_capacity_tokens_per_rank
    assert 4096 < cap < 202_752 - 64  # below GLM-5.1's own limit, so the limit is the cache's
    at_cap = memory_fit(make_deployment(mem_fraction=0.72, max_context=cap))
    assert at_cap.kv_capacity_tokens_per_rank == cap
    assert at_cap.fits and at_cap.max_concurrency_at_context == 1
    over = memory_fit(make_deployment(mem_fraction=0.72, max_context=cap + 64))
    assert not over.fits
    assert any("less than one" in r for r in over.reasons), over.reasons


def test_vllm_budget_must_hold_weights_and_the_engine_reserve() -> None:
    # vLLM's memory fraction covers activations and CUDA graphs too: a budget that holds the
    # weights but not weights + reserve cannot start, and the reason names the reserve.
    ref = memory_fit(make_deployment())
    weights, reserve = ref.weights_bytes_per_gpu, ref.reserve_bytes_per_gpu
    assert reserve > 0
    fraction = (weights + reserve / 2) / ref.gpu_memory_bytes
    fit = memory_fit(make_deployment(mem_fraction=fraction))
    assert fit.budget_bytes_per_gpu > weights
    assert not fit.fits
    assert any("engine reserve" in r for r in fit.reasons), fit.reasons
    roomy = (weights + reserve + 2 * 2**30) / ref.gpu_memory_bytes
    assert memory_fit(make_deployment(mem_fraction=roomy, max_context=1024)).fits


def test_kv_page_size_follows_the_attention_kind_not_mla_alone() -> None:
    # vLLM's default block_size is 16 and SGLang's page_size 1; DSA models (an indexer) page
    # in 64-token blocks in both (FlashMLA sparse). DeepSeek-V3 is MLA without an indexer.
    assert make_deployment("glm-5.1").page_size_tokens == 64
    assert make_deployment("glm-5.1", engine="sglang").page_size_tokens == 64
    assert make_deployment("deepseek-v3").page_size_tokens == 16
    assert make_deployment("deepseek-v3", engine="sglang").page_size_tokens == 1
    assert make_deployment("llama-3.1-70b").page_size_tokens == 16
