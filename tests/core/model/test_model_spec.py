"""ModelSpec against the exact and official numbers of the checkpoints."""

from __future__ import annotations

import pytest

from moerun.catalog.models import load_spec
from moerun.core.model.model_spec import ModelSpec
from tests.conftest import raw_config

# (catalog id, exact main-model params, exact stored params) from the checkpoints.
EXACT = [
    ("glm-5", 743_911_218_432, 753_864_139_008),
    ("glm-5.1", 743_911_218_432, 753_864_139_008),
    ("glm-5-fp8", 743_911_218_432, 753_864_139_008),
    ("glm-5.1-fp8", 743_911_218_432, 753_864_139_008),
    ("deepseek-v3", 671_026_419_200, 684_489_845_504),
    ("qwen3-30b-a3b", 30_532_122_624, 30_532_122_624),
    ("qwen3-235b-a22b", 235_093_634_560, 235_093_634_560),
    ("llama-3.1-70b", 70_553_706_496, 70_553_706_496),
]


@pytest.mark.parametrize(("model", "main", "stored"), EXACT)
def test_exact_parameter_counts(model: str, main: int, stored: int) -> None:
    spec = load_spec(model)
    assert spec.total_params_main == main
    assert spec.total_params_stored == stored


def test_glm5_mtp_layer_adds_exactly_and_stores_no_embed_head(glm5: ModelSpec) -> None:
    assert glm5.mtp_params == 9_952_920_576
    assert glm5.arch.mtp_stores_embed_head is False


@pytest.mark.parametrize(
    ("model", "main_b", "stored_lo_b", "stored_hi_b"),
    [
        ("glm-4.5", 352.8, 356.8, 358.3),
        ("glm-4.6", 352.8, 356.8, 358.3),
        ("glm-4.7", 352.8, 356.8, 358.3),
        ("glm-4.5-air", 106.85, 109.23, 109.23),
    ],
)
def test_glm4_moe_about(model: str, main_b: float, stored_lo_b: float, stored_hi_b: float) -> None:
    spec = load_spec(model)
    assert spec.total_params_main / 1e9 == pytest.approx(main_b, abs=0.05)
    assert stored_lo_b - 0.05 <= spec.total_params_stored / 1e9 <= stored_hi_b + 0.05


def test_glm5_active_params_three_definitions(glm5: ModelSpec) -> None:
    assert glm5.active_params / 1e9 == pytest.approx(41.78, abs=0.005)
    assert glm5.active_params_no_embedding / 1e9 == pytest.approx(40.83, abs=0.005)
    assert glm5.active_params_compute / 1e9 == pytest.approx(39.88, abs=0.005)


@pytest.mark.parametrize(
    ("model", "total_b", "active_b"),
    [("deepseek-v3", 671, 37), ("qwen3-235b-a22b", 235, 22), ("qwen3-30b-a3b", 30.5, 3.3)],
)
def test_official_total_and_active(model: str, total_b: float, active_b: float) -> None:
    spec = load_spec(model)
    assert spec.total_params_main / 1e9 == pytest.approx(total_b, rel=0.01)
    # Vendors round and differ on whether embedding/head count: within one definition's reach.
    candidates = (spec.active_params, spec.active_params_no_embedding, spec.active_params_compute)
    assert min(abs(c / 1e9 - active_b) for c in candidates) < 0.6


def test_breakdown_sums_to_stored(glm5: ModelSpec) -> None:
    parts = glm5.breakdown()
    assert sum(parts.values()) == glm5.total_params_stored
    assert parts["embedding"] == parts["head"] == 154_880 * 6144
    assert parts["mtp"] == glm5.mtp_params
    assert parts["routed_experts"] == 75 * 256 * 3 * 6144 * 2048
    assert parts["indexer"] == 78 * (2048 * 4096 + 6144 * 128 + 256 + 6144 * 32)


def test_glm5_architecture_read_from_config(glm5: ModelSpec) -> None:
    assert (
        glm5.arch.num_layers == 78
        and glm5.arch.num_moe_layers == 75
        and glm5.arch.num_mtp_layers == 1
    )
    assert glm5.arch.attention_kind == "mla+dsa"
    assert (
        glm5.arch.mla is not None
        and glm5.arch.mla.latent_dim == 576
        and glm5.arch.mla.qk_head_dim == 256
    )
    assert glm5.arch.indexer is not None and glm5.arch.indexer.topk == 2048
    assert glm5.arch.attended_tokens(200_000) == 2048 and glm5.arch.attended_tokens(100) == 100


def test_parser_follows_the_config_not_a_table() -> None:
    """A DeepSeek-V3-style model with other sizes gets numbers from its own fields."""
    cfg = raw_config("deepseek-v3")
    cfg.update(num_hidden_layers=30, n_routed_experts=64, first_k_dense_replace=1)
    spec = ModelSpec.from_hf(cfg)
    base = ModelSpec.from_hf(raw_config("deepseek-v3"))
    h, mi = 7168, 2048
    expert = 3 * h * mi
    per_moe_layer_delta = (256 - 64) * (expert + h + 1)  # experts, gate rows, bias
    # layer-by-layer arithmetic: remove 31 layers and shrink the remaining MoE layers
    attn_norms = sum(
        t.numel for t in base.tensors if t.layer == 3 and t.component in ("attention", "norms")
    )
    moe_layer = sum(t.numel for t in base.tensors if t.layer == 3)
    dense_layer = sum(t.numel for t in base.tensors if t.layer == 0)
    expected = (
        base.total_params_main
        - 2 * (dense_layer - moe_layer)  # layers 1, 2 become MoE
        - 31 * moe_layer
        - 29 * per_moe_layer_delta
    )
    assert attn_norms > 0
    assert spec.total_params_main == expected
    assert spec.arch.num_moe_layers == 29


def test_mla_without_q_lora() -> None:
    cfg = raw_config("deepseek-v3")
    cfg["q_lora_rank"] = None
    spec = ModelSpec.from_hf(cfg)
    q = [t for t in spec.tensors if t.name == "model.layers.0.self_attn.q_proj.weight"]
    assert q and q[0].shape == (128 * 192, 7168)
    assert not [t for t in spec.tensors if "q_a_proj" in t.name]


def test_index_cache_pattern_counts_only_full_layers() -> None:
    cfg = raw_config("glm-5.1")
    cfg["index_topk_freq"] = 4
    cfg["index_skip_topk_offset"] = 2
    spec = ModelSpec.from_hf(cfg)
    assert spec.arch.indexer is not None
    expected = [max(i - 1, 0) % 4 == 0 for i in range(78)]
    assert list(spec.arch.indexer.layers) == expected
    per_layer = 2048 * 4096 + 6144 * 128 + 256 + 6144 * 32
    full = ModelSpec.from_hf(raw_config("glm-5.1"))
    assert full.total_params_main - spec.total_params_main == (78 - sum(expected)) * per_layer


def test_index_topk_pattern_string_and_indexer_types() -> None:
    cfg = raw_config("glm-5.1")
    cfg["index_topk_pattern"] = "FS" * 39
    spec = ModelSpec.from_hf(cfg)
    assert spec.arch.indexer is not None and spec.arch.indexer.num_indexer_layers == 39
    cfg2 = raw_config("glm-5.1")
    cfg2["indexer_types"] = ["full"] + ["shared"] * 77
    assert ModelSpec.from_hf(cfg2).arch.indexer.num_indexer_layers == 1  # type: ignore[union-attr]


def test_nested_text_config_and_tied_embeddings() -> None:
    inner = raw_config("llama-3.1-70b")
    inner["tie_word_embeddings"] = True
    spec = ModelSpec.from_hf({"model_type": "some_vlm", "text_config": inner})
    assert spec.total_params_main == 70_553_706_496 - 128_256 * 8192


def test_qwen3_moe_mlp_only_layers_and_sparse_step() -> None:
    cfg = raw_config("qwen3-30b-a3b")
    cfg["mlp_only_layers"] = [0, 1]
    spec = ModelSpec.from_hf(cfg)
    assert spec.arch.num_moe_layers == 46
    cfg["decoder_sparse_step"] = 2
    cfg["mlp_only_layers"] = []
    assert ModelSpec.from_hf(cfg).arch.num_moe_layers == 24


def test_glm4_moe_has_qkv_bias_and_qk_norm() -> None:
    spec = load_spec("glm-4.5")
    names = {t.name for t in spec.tensors if t.layer == 0}
    assert "model.layers.0.self_attn.q_proj.bias" in names
    assert "model.layers.0.self_attn.q_norm.weight" in names
    assert "model.layers.0.self_attn.o_proj.bias" not in names
    air = load_spec("glm-4.5-air")
    assert not any("q_norm" in t.name for t in air.tensors)


def test_glm5_parameters_by_part_from_hand_arithmetic(glm5: ModelSpec) -> None:
    # GLM-5: hidden 6144, vocab 154,880, 78 layers (3 dense, 75 MoE), MLA (64 heads, q_lora
    # 2048, kv_lora 512, qk_nope 192, qk_rope 64, v 256), DSA indexer (32 heads x 128), 256
    # routed experts + 1 shared of 2048, dense FFN 12288, one MTP layer.
    h, v, layers, moe_layers = 6144, 154_880, 78, 75
    attention = (
        h * 2048  # q_a_proj
        + 2048  # q_a_layernorm
        + 2048 * 64 * (192 + 64)  # q_b_proj
        + h * (512 + 64)  # kv_a_proj_with_mqa
        + 512  # kv_a_layernorm
        + 512 * 64 * (192 + 256)  # kv_b_proj
        + 64 * 256 * h  # o_proj
    )
    indexer = 2048 * 32 * 128 + h * 128 + 2 * 128 + h * 32  # wq_b, wk, k_norm w+b, weights_proj
    expert = 3 * 2048 * h  # gate, up, down
    router = 256 * h + 256  # gate weight + fp32 score-correction bias
    want = {
        "embedding": v * h,
        "attention": layers * attention,
        "indexer": layers * indexer,
        "dense_mlp": 3 * 3 * 12_288 * h,
        "routed_experts": moe_layers * 256 * expert,
        "shared_experts": moe_layers * expert,
        "router": moe_layers * router,
        "norms": layers * 2 * h + h,  # input + post-attention per layer, and the final norm
        "head": v * h,
        # enorm, hnorm, eh_proj, one MoE decoder layer, the shared head's norm; no embed/head
        "mtp": 2 * h + 2 * h * h + attention + indexer + 2 * h + router + 257 * expert + h,
    }
    assert glm5.breakdown() == want
    assert sum(v for k, v in want.items() if k != "mtp") == 743_911_218_432
    assert want["mtp"] == 9_952_920_576
