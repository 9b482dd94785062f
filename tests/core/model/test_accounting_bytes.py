"""Weight and KV bytes against exact counts from config.json (shared/data/model-facts.md) and
formats worked out by hand on shapes that are not multiples of the block sizes."""

from __future__ import annotations

import pytest

from moerun.catalog.models import load_spec
from moerun.core.model.kv_cache import (
    attention_bytes_per_layer,
    indexer_bytes_per_layer,
    kv_bytes_per_token,
    kv_heads_per_gpu,
)
from moerun.core.model.model_spec import ModelSpec
from moerun.core.model.weights import converted_bytes, keep_list, weight_bytes

# GLM-5: 743,911,218,432 parameters in the main model, 753,864,139,008 with the MTP layer.
GLM5_MAIN_PARAMS = 743_911_218_432
GLM5_STORED_PARAMS = 753_864_139_008


def test_formats_on_ragged_shapes() -> None:
    assert converted_bytes("bf16", 3, 5) == 2 * 15
    # fp8: one fp32 scale per started 128 x 128 block: 129 rows -> 2 blocks, 257 cols -> 3.
    assert converted_bytes("fp8", 129, 257) == 129 * 257 + 4 * 2 * 3
    # int4: 387 values in 194 bytes; 2 groups of 128 per row (129 cols) x 3 rows = 6 groups,
    # each an fp16 scale (2 B) and half a byte of zero point (3 B for 6).
    assert converted_bytes("int4", 3, 129) == 194 + 6 * 2 + 3
    with pytest.raises(ValueError, match="unknown weight format 'fp6'"):
        converted_bytes("fp6", 128, 128)
    with pytest.raises(ValueError, match="unknown weight format 'fp6'"):
        weight_bytes(load_spec("qwen3-30b-a3b"), "fp6")


def test_bf16_checkpoint_counts_every_parameter_as_high_precision(glm5: ModelSpec) -> None:
    bf16 = weight_bytes(glm5, "bf16")
    assert bf16.format == "bf16"
    assert bf16.converted_params == 0 and bf16.converted_bytes == 0
    assert bf16.high_precision_params == GLM5_STORED_PARAMS
    main = weight_bytes(glm5, "bf16", include_mtp=False)
    assert main.high_precision_params == GLM5_MAIN_PARAMS
    assert weight_bytes(glm5, "fp8").format == "fp8"


def test_mxfp4_converts_routed_and_shared_experts(glm5: ModelSpec) -> None:
    # Per MoE layer: 256 routed + 1 shared expert, each gate/up [2048, 6144] and down
    # [6144, 2048]; 75 MoE layers in the main model plus the MoE MTP layer.
    per_expert = 3 * 2048 * 6144
    mx = weight_bytes(glm5, "mxfp4")
    assert mx.converted_params == 76 * 257 * per_expert == 737_308_311_552
    assert mx.high_precision_params == GLM5_STORED_PARAMS - mx.converted_params


def test_keep_list_reads_the_config_under_the_real_module_names() -> None:
    fp8 = load_spec("glm-5.1-fp8")
    keep = keep_list(fp8)
    # GLM-5-FP8 lists the indexer's head-weight projection as `indexers_proj`.
    assert "model.layers.0.self_attn.indexer.weights_proj" in keep
    assert "model.layers.0.self_attn.indexers_proj" not in keep
    assert {"lm_head", "model.embed_tokens"} <= keep
    assert keep_list(load_spec("glm-5.1")) == frozenset()


def test_kv_of_models_without_an_indexer() -> None:
    dsv3 = load_spec("deepseek-v3")
    assert indexer_bytes_per_layer(dsv3) == 0
    # 61 layers + the MTP draft layer, 576 fp8 latent bytes each and no indexer key.
    assert kv_bytes_per_token(dsv3, "fp8", num_mtp_layers=1) == 62 * 576
    with pytest.raises(ValueError, match="unknown KV layout 'fp8_trtllm' for mla attention"):
        attention_bytes_per_layer(dsv3, "fp8_trtllm")


def test_kv_bytes_are_whole_numbers(glm5: ModelSpec) -> None:
    # Bytes and heads are counts: a float here leaks into every capacity and report.
    assert type(attention_bytes_per_layer(glm5, "fp8")) is int
    assert type(kv_bytes_per_token(glm5, "fp8")) is int
    llama = load_spec("llama-3.1-70b")
    assert [type(kv_heads_per_gpu(llama, tp)) for tp in (1, 2, 8)] == [int, int, int]
