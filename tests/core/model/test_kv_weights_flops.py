"""KV bytes per token, weight bytes per format and FLOPs per token."""

from __future__ import annotations

import pytest

from moerun.catalog.models import load_spec
from moerun.core.model.flops import attention_flops_per_token, flops_per_token, prefill_flops
from moerun.core.model.kv_cache import (
    attention_bytes_per_layer,
    kv_bytes_per_token,
    kv_heads_per_gpu,
)
from moerun.core.model.model_spec import ModelSpec
from moerun.core.model.weights import converted_bytes, weight_bytes
from tests.conftest import raw_config


def test_glm5_kv_bytes_per_token(glm5: ModelSpec) -> None:
    assert kv_bytes_per_token(glm5, "bf16") == 100_152
    assert kv_bytes_per_token(glm5, "fp8") == 61_464
    assert attention_bytes_per_layer(glm5, "fp8") == 656
    assert attention_bytes_per_layer(glm5, "fp8_trtllm") == 576
    assert kv_bytes_per_token(glm5, "fp8_trtllm") == 78 * (576 + 132)
    # the MTP draft layer adds one layer's worth
    assert kv_bytes_per_token(glm5, "fp8", num_mtp_layers=1) == 61_464 + 656 + 132


def test_deepseek_v3_mla_kv() -> None:
    spec = load_spec("deepseek-v3")
    assert kv_bytes_per_token(spec, "bf16") == 61 * 1152
    assert kv_bytes_per_token(spec, "fp8") == 61 * 576


def test_gqa_kv_sharded_then_replicated() -> None:
    spec = load_spec("llama-3.1-70b")
    assert kv_bytes_per_token(spec, "bf16") == 80 * 2 * 8 * 128 * 2
    assert kv_bytes_per_token(spec, "bf16", kv_heads_per_gpu=1) == 80 * 2 * 128 * 2


def test_indexer_cache_only_on_indexer_layers() -> None:
    cfg = raw_config("glm-5.1")
    cfg["index_topk_pattern"] = "FSSS" * 19 + "FS"
    spec = ModelSpec.from_hf(cfg)
    assert kv_bytes_per_token(spec, "fp8") == 78 * 656 + 20 * 132


def test_fp8_block_formula() -> None:
    assert converted_bytes("fp8", 2048, 6144) == 2048 * 6144 + 4 * 16 * 48
    assert converted_bytes("int4", 128, 256) == 128 * 128 + 128 * 2 * 2.5


def test_glm5_checkpoint_bytes(glm5: ModelSpec) -> None:
    assert weight_bytes(glm5, "bf16").total_bytes == 1_507_728_316_928
    fp8 = weight_bytes(glm5, "fp8").total_bytes
    assert fp8 / 1e9 == pytest.approx(756, abs=1)


def test_glm5_fp8_checkpoint_keeps_listed_modules_bf16() -> None:
    fp8_spec = load_spec("glm-5-fp8")
    assert fp8_spec.modules_to_not_convert is not None
    # the config's own list and moerun's default keep-list agree on GLM-5
    assert (
        weight_bytes(fp8_spec, "fp8").total_bytes
        == weight_bytes(load_spec("glm-5"), "fp8").total_bytes
    )


def test_int4_is_not_200_gb(glm5: ModelSpec) -> None:
    """The seed article's ~200 GB INT4 claim is wrong: 4-bit GLM-5.1 is 360-420 GB."""
    int4 = weight_bytes(glm5, "int4").total_bytes / 1e9
    assert 360 <= int4 <= 420
    nvfp4 = weight_bytes(glm5, "nvfp4").total_bytes / 1e9
    assert nvfp4 == pytest.approx(434, abs=2)  # NVIDIA's experts-only NVFP4 checkpoint


def test_flops_dsa_caps_attention_but_not_indexer(glm5: ModelSpec) -> None:
    a_4k = attention_flops_per_token(glm5, 4096, "decode")
    a_8k = attention_flops_per_token(glm5, 8192, "decode")
    a_16k = attention_flops_per_token(glm5, 16384, "decode")
    # beyond topk only the indexer grows, linearly
    assert a_16k - a_8k == 2 * (a_8k - a_4k)
    indexer_per_token = 2 * 32 * 128 * 78
    assert a_8k - a_4k == indexer_per_token * 4096
    assert flops_per_token(glm5, 1) == pytest.approx(2 * glm5.active_params_no_embedding, rel=1e-3)


def test_prefill_flops_sums_positions(glm5: ModelSpec) -> None:
    n = 3000
    by_token = sum(flops_per_token(glm5, p, "prefill") for p in range(1, n + 1))
    assert prefill_flops(glm5, n) == by_token
    assert prefill_flops(glm5, 100, num_cached_tokens=2900) == sum(
        flops_per_token(glm5, p, "prefill") for p in range(2901, 3001)
    )


def test_gqa_heads_per_gpu_split_over_tp_then_replicated() -> None:
    # Llama-3.1-70B: 8 KV heads. TP2 holds 4 per GPU, TP8 one, TP16 still one (replicated).
    spec = load_spec("llama-3.1-70b")
    assert spec.arch.num_kv_heads == 8
    assert [kv_heads_per_gpu(spec, tp) for tp in (1, 2, 4, 8, 16)] == [8, 4, 2, 1, 1]


def test_gqa_fp8_kv_is_one_byte_per_element() -> None:
    # K and V, 8 heads of 128, 80 layers: bf16 2 bytes each, fp8 1 byte each.
    spec = load_spec("llama-3.1-70b")
    assert kv_bytes_per_token(spec, "fp8") == 80 * 2 * 8 * 128
    assert kv_bytes_per_token(spec, "fp8", kv_heads_per_gpu=2) == 80 * 2 * 2 * 128


def test_mxfp4_is_half_a_byte_plus_one_scale_per_32() -> None:
    # OCP MX: e2m1 elements (4 bits) and one e8m0 scale byte per block of 32 along `in`.
    assert converted_bytes("mxfp4", 2048, 6144) == 2048 * 6144 // 2 + 2048 * 6144 // 32
    assert converted_bytes("mxfp4", 6144, 2048) == 6144 * 2048 // 2 + 6144 * 2048 // 32
    assert converted_bytes("nvfp4", 2048, 6144) == 2048 * 6144 // 2 + 2048 * 6144 // 16 + 8


def test_glm5_mxfp4_experts_cost_17_32_of_a_byte_per_parameter(glm5: ModelSpec) -> None:
    # GLM-5's expert Linears have `in` of 6144 or 2048, both multiples of 32, so every converted
    # parameter costs exactly 1/2 + 1/32 byte; everything else keeps its bf16 (or fp32) bytes.
    mx = weight_bytes(glm5, "mxfp4")
    assert mx.converted_bytes * 32 == mx.converted_params * 17
    bf16 = weight_bytes(glm5, "bf16")
    assert mx.high_precision_bytes == bf16.total_bytes - 2 * mx.converted_params
