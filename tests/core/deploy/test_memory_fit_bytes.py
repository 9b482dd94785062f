"""Memory fit to the byte: the reserve, the per-GPU weights and the KV pool, each against
numbers worked out by hand from config.json (shared/data/model-facts.md) and the engine
catalog (engines.yaml: 24 hidden vectors per batched token, fp32 logits, 1 GiB of CUDA
graphs, 2 GiB non-torch; vLLM 8192 tokens and 1024 sequences per rank on H200)."""

from __future__ import annotations

import math

import pytest

from moerun.catalog.models import load_spec
from moerun.core.deploy.memory_fit import best_layout, memory_fit, stage_layers, weights_per_gpu
from moerun.core.deploy.mtp import Mtp
from moerun.core.deploy.parallel import Parallel
from moerun.core.model.weights import weight_bytes
from tests.conftest import make_deployment

GIB = 2**30
GB = 1e9
# GLM-5: hidden 6144, vocab 154,880. Qwen3-30B-A3B: hidden 2048, vocab 151,936, 48 identical
# MoE layers, 4 KV heads of 128, untied embedding and head; 30,532,122,624 parameters.
QWEN3_30B_BF16_BYTES = 2 * 30_532_122_624


def test_vllm_reserve_is_activations_logits_graphs_and_non_torch() -> None:
    fit = memory_fit(make_deployment())  # GLM-5.1, 8 x H200, vLLM TP8
    activations = 8192 * (2 * 6144) * 24  # batched tokens x bf16 hidden x 24 vectors
    logits = 1024 * (154_880 // 8) * 4  # max_num_seqs x vocab / TP x fp32
    assert fit.activation_bytes_per_gpu == activations + logits == 2_495_217_664
    assert fit.cuda_graph_bytes_per_gpu == 1 * GIB
    assert fit.non_torch_bytes_per_gpu == 2 * GIB
    assert fit.reserve_bytes_per_gpu == 2_495_217_664 + 3 * GIB
    # A sequence cap given by the user sizes the logits, not the engine's default.
    capped = memory_fit(make_deployment(max_num_seqs=256))
    assert capped.activation_bytes_per_gpu == activations + 256 * (154_880 // 8) * 4
    # SGLang has no fixed cap: the logits of a whole chunk (8192 tokens on H200).
    sglang = memory_fit(make_deployment(engine="sglang"))
    assert sglang.activation_bytes_per_gpu == activations + 8192 * (154_880 // 8) * 4
    # One GPU: the logits are not split.
    one = memory_fit(make_deployment(model="qwen3-30b-a3b", num_gpus=1))
    assert one.activation_bytes_per_gpu == 8192 * (2 * 2048) * 24 + 1024 * 151_936 * 4


def test_fit_reports_its_layout_and_limits() -> None:
    fit = memory_fit(make_deployment())
    assert fit.layout == "TP8"
    assert fit.kv_layout == "fp8"
    assert fit.max_context == 202_752  # GLM-5.1's max_position_embeddings
    assert type(fit.kv_capacity_tokens_per_rank) is int
    assert type(fit.kv_capacity_tokens) is int


def test_one_gpu_holds_every_tensor_once() -> None:
    # TP1, one stage: the whole BF16 checkpoint, no byte more or less.
    one = memory_fit(make_deployment(model="qwen3-30b-a3b", num_gpus=1, weights="bf16"))
    assert one.weights_bytes_per_gpu == QWEN3_30B_BF16_BYTES


def test_two_pipeline_stages_split_identical_layers_evenly() -> None:
    assert stage_layers(10, 3) == [range(0, 4), range(4, 7), range(7, 10)]
    # 48 identical layers, 24 per stage; the first stage adds the embedding, the last the
    # head (same size, untied) and the final norm (2048 bf16 values).
    dep = make_deployment(
        model="qwen3-30b-a3b", num_gpus=2, weights="bf16", parallel=Parallel(tp=1, pp=2)
    )
    fit = memory_fit(dep)
    first, last = weights_per_gpu(dep)
    assert first + last == QWEN3_30B_BF16_BYTES
    assert last - first == 2 * 2048
    assert fit.weights_bytes_per_gpu == last
    # Each stage caches its own 24 layers: 24 x K and V x 4 heads x 128 x 1 byte (fp8).
    assert fit.kv_bytes_per_token_per_gpu == 24 * 2 * 4 * 128


def test_tensor_parallel_halves_the_weights_and_splits_gqa_heads() -> None:
    one = memory_fit(make_deployment(model="qwen3-30b-a3b", num_gpus=1, weights="bf16"))
    two = memory_fit(
        make_deployment(model="qwen3-30b-a3b", num_gpus=2, weights="bf16", parallel=Parallel(tp=2))
    )
    # Everything but the router gates and norms (0.04% of the model) is split in two.
    assert two.weights_bytes_per_gpu == pytest.approx(one.weights_bytes_per_gpu / 2, rel=5e-4)
    assert two.weights_bytes_per_gpu > one.weights_bytes_per_gpu / 2
    # 4 KV heads: two per GPU at TP2, one (replicated) at TP8.
    assert two.kv_bytes_per_token_per_gpu == 48 * 2 * 2 * 128
    tp8 = memory_fit(make_deployment(model="qwen3-30b-a3b", num_gpus=8, weights="bf16"))
    assert tp8.kv_bytes_per_token_per_gpu == 48 * 2 * 1 * 128


def _fp8_bytes(out_features: int, in_features: int) -> int:
    return out_features * in_features + 4 * math.ceil(out_features / 128) * math.ceil(
        in_features / 128
    )


def test_sglang_splits_dense_mlps_over_the_whole_tp_group() -> None:
    # GLM-5 has 3 dense layers (FFN 12288) and a shared expert (FFN 2048) in each of its 75
    # MoE layers. With DP8 x EP8 and attention TP1, vLLM keeps them whole on every GPU
    # (split over TP = 1), SGLang splits them over its 8-wide --tp-size.
    dense = 3 * 3 * _fp8_bytes(12288, 6144) + 75 * 3 * _fp8_bytes(2048, 6144)
    assert dense == 3 * 3 * 75_515_904 + 75 * 3 * 12_585_984
    layout = Parallel(tp=1, dp=8, ep=8)
    vllm = memory_fit(make_deployment(parallel=layout, engine="vllm"))
    sglang = memory_fit(make_deployment(parallel=layout, engine="sglang"))
    assert vllm.weights_bytes_per_gpu - sglang.weights_bytes_per_gpu == pytest.approx(
        dense * 7 / 8, abs=2
    )


def test_sglang_static_pool_holds_weights_and_kv_only() -> None:
    fit = memory_fit(make_deployment(engine="sglang"))
    assert fit.fits
    assert fit.kv_free_bytes_per_gpu == fit.budget_bytes_per_gpu - fit.weights_bytes_per_gpu


def test_concurrency_counts_whole_pages_per_sequence() -> None:
    fit = memory_fit(make_deployment())
    cap, ranks = fit.kv_capacity_tokens_per_rank, fit.num_kv_ranks
    assert cap > 0
    assert fit.concurrency_at(0) == 0
    assert fit.concurrency_at(-5) == 0
    assert fit.concurrency_at(1) == ranks * (cap // 64)  # one token takes a 64-token page
    assert fit.concurrency_at(65) == ranks * (cap // 128)
    assert fit.concurrency_at(cap) == ranks


def test_failure_reasons_state_the_numbers() -> None:
    # vLLM: weights fit the budget, weights + reserve do not.
    ref = memory_fit(make_deployment())
    w, r, mem = ref.weights_bytes_per_gpu, ref.reserve_bytes_per_gpu, ref.gpu_memory_bytes
    tight = memory_fit(make_deployment(mem_fraction=(w + r / 2) / mem))
    b = tight.budget_bytes_per_gpu
    assert tight.reasons == (
        f"weights {w / GB:.1f} GB + engine reserve {r / GB:.1f} GB per GPU exceed the "
        f"{b / GB:.1f} GB budget ({(w + r / 2) / mem:.2f} of 150.8 GB on NVIDIA H200 SXM 141GB)",
    )
    assert tight.kv_capacity_tokens_per_rank == 0 and tight.kv_capacity_tokens == 0
    assert tight.max_concurrency_at_context == 0
    # SGLang: the weights alone exceed the static pool (GLM-5 FP8 on 8 x H100, 0.85).
    h100 = memory_fit(make_deployment(gpu="h100_sxm", engine="sglang"))
    w8, b8 = h100.weights_bytes_per_gpu, h100.budget_bytes_per_gpu
    assert w8 > b8
    assert h100.reasons == (
        f"weights {w8 / GB:.1f} GB per GPU exceed the static budget {b8 / GB:.1f} GB "
        f"(0.85 of {h100.gpu_memory_bytes / GB:.1f} GB)",
    )
    # SGLang: the pool leaves too little outside it for activations and graphs.
    greedy = memory_fit(make_deployment(engine="sglang", mem_fraction=0.999))
    outside = greedy.gpu_memory_bytes - greedy.budget_bytes_per_gpu
    assert greedy.reasons == (
        f"mem fraction 1.00 leaves {outside / GB:.1f} GB outside the static pool, less than "
        f"the {greedy.reserve_bytes_per_gpu / GB:.1f} GB of activations and CUDA graphs; "
        "lower --mem-fraction",
    )
    assert greedy.kv_capacity_tokens > 202_752  # room for a sequence, yet it cannot start
    assert greedy.max_concurrency_at_context == 0
    # KV too small for one sequence.
    short = memory_fit(make_deployment(mem_fraction=0.72, max_context=4096))
    cap = short.kv_capacity_tokens_per_rank
    over = memory_fit(make_deployment(mem_fraction=0.72, max_context=cap + 64))
    assert over.reasons == (
        f"KV cache holds {cap:,} tokens per rank, less than one {cap + 64:,}-token sequence "
        "(the engine refuses to start; lower --max-context or add GPUs)",
    )


def test_best_layout_over_two_h100_nodes_takes_the_most_kv() -> None:
    # On 16 x H100, DP16 does not fit; of the rest, DP8 x PP2 caches the most (its stages
    # each hold half the layers), and of two equal layouts the one with EP wins.
    best = best_layout(make_deployment(gpu="h100_sxm", num_gpus=16))
    assert best is not None
    par, fit = best
    assert par == Parallel(tp=1, dp=8, pp=2, ep=8)
    assert fit.fits
    assert not memory_fit(
        make_deployment(gpu="h100_sxm", num_gpus=16, parallel=Parallel(tp=1, dp=16, ep=16))
    ).fits
    for other in (Parallel(tp=2, dp=8, ep=16), Parallel(tp=2, dp=4, pp=2, ep=8)):
        rival = memory_fit(make_deployment(gpu="h100_sxm", num_gpus=16, parallel=other))
        assert rival.fits and rival.kv_capacity_tokens < fit.kv_capacity_tokens
    h200 = best_layout(make_deployment())
    assert h200 is not None and h200[0] == Parallel(tp=1, dp=8, ep=8)


def test_one_spec_in_two_formats_and_with_its_mtp_layer() -> None:
    # The same spec object priced in two formats gives each format's bytes; on one GPU the
    # MTP layer adds exactly its stored bytes when MTP runs.
    glm5 = load_spec("glm-5.1")
    for fmt in ("fp8", "bf16"):
        off = memory_fit(make_deployment(model=glm5, num_gpus=1, weights=fmt))
        on = memory_fit(
            make_deployment(model=glm5, num_gpus=1, weights=fmt, mtp=Mtp.drafting(1, 0.85))
        )
        assert off.weights_bytes_per_gpu == weight_bytes(glm5, fmt, include_mtp=False).total_bytes
        assert on.weights_bytes_per_gpu == weight_bytes(glm5, fmt).total_bytes
    assert weight_bytes(glm5, "bf16").total_bytes == 2 * 753_864_139_008 + 2 * 76 * 256  # fp32 bias


def test_a_layout_that_does_not_use_the_gpus_places_nothing() -> None:
    fit = memory_fit(make_deployment(num_gpus=8, parallel=Parallel(tp=4)))
    assert not fit.fits
    assert fit.weights_bytes_per_gpu == 0
    assert fit.kv_capacity_tokens == 0 and fit.max_concurrency_at_context == 0


def _fraction_for(budget_bytes: int, memory_bytes: int) -> float:
    """A memory fraction whose budget int(memory x fraction) is exactly `budget_bytes`."""
    f = budget_bytes / memory_bytes
    while int(memory_bytes * f) < budget_bytes:
        f = math.nextafter(f, 1.0)
    while int(memory_bytes * f) > budget_bytes:
        f = math.nextafter(f, 0.0)
    assert int(memory_bytes * f) == budget_bytes
    return f


def test_budgets_exactly_full_are_not_exceeded() -> None:
    ref = memory_fit(make_deployment())
    w, r, mem = ref.weights_bytes_per_gpu, ref.reserve_bytes_per_gpu, ref.gpu_memory_bytes
    # vLLM: weights + reserve exactly the budget: nothing exceeded, but no KV left.
    full = memory_fit(make_deployment(mem_fraction=_fraction_for(w + r, mem)))
    assert full.budget_bytes_per_gpu == w + r
    assert full.kv_free_bytes_per_gpu == 0 and full.kv_capacity_tokens_per_rank == 0
    assert len(full.reasons) == 1 and full.reasons[0].startswith("KV cache holds 0 tokens")
    # SGLang: weights exactly the static pool.
    sg = memory_fit(make_deployment(engine="sglang"))
    ws = sg.weights_bytes_per_gpu
    pool = memory_fit(make_deployment(engine="sglang", mem_fraction=_fraction_for(ws, mem)))
    assert len(pool.reasons) == 1 and pool.reasons[0].startswith("KV cache holds 0 tokens")
    # SGLang: exactly the reserve left outside the pool is enough.
    rs = sg.reserve_bytes_per_gpu
    edge = memory_fit(make_deployment(engine="sglang", mem_fraction=_fraction_for(mem - rs, mem)))
    assert edge.fits, edge.reasons
    # vLLM short of its reserve: the free bytes it reports never go below zero.
    tight = memory_fit(make_deployment(mem_fraction=(w + r / 2) / mem))
    assert tight.kv_free_bytes_per_gpu == 0
