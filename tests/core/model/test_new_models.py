"""GLM-5.2 (IndexCache) and DeepSeek-V3.2, checked against hand arithmetic and the checkpoints.

Expectations are worked out here from published numbers (GLM-5's exact checkpoint count in
the project's model facts, DeepSeek-V3's, the indexer's tensor shapes) and from the FP8
checkpoint's own module list, never from the code under test.
"""

from __future__ import annotations

import re

import pytest

from moerun.catalog.models import load_config, load_spec, model_index
from moerun.core.model.kv_cache import kv_bytes_per_token
from moerun.core.model.weights import weight_bytes

GLM5_MAIN, GLM5_STORED = 743_911_218_432, 753_864_139_008
DSV3_MAIN, DSV3_STORED = 671_026_419_200, 684_489_845_504

# GLM-5 indexer per layer: wq_b [32*128, q_lora 2048], wk [128, 6144], k_norm weight + bias,
# weights_proj [32, 6144].
GLM_INDEXER = 32 * 128 * 2048 + 128 * 6144 + 2 * 128 + 32 * 6144
# DeepSeek-V3.2 indexer: 64 heads of 128 over q_lora 1536, hidden 7168.
DS_INDEXER = 64 * 128 * 1536 + 128 * 7168 + 2 * 128 + 64 * 7168
# IndexCache: layers 0, 1, 2 then every fourth from 6 run their own indexer: 3 + 18 = 21.
GLM52_FULL = [0, 1, 2, *range(6, 78, 4)]


def test_glm52_runs_its_indexer_on_21_of_78_layers() -> None:
    spec = load_spec("glm-5.2")
    assert spec.arch.indexer is not None
    assert len(GLM52_FULL) == 21
    assert [i for i, full in enumerate(spec.arch.indexer.layers) if full] == GLM52_FULL


def test_glm52_indexer_layers_match_the_fp8_checkpoint_module_list() -> None:
    """The FP8 checkpoint names an indexer k_norm exactly on the layers that run one (+ MTP)."""
    config, _ = load_config("glm-5.2-fp8")
    names = config["quantization_config"]["modules_to_not_convert"]
    with_indexer = sorted(
        {
            int(m.group(1))
            for n in names
            if (m := re.match(r"model\.layers\.(\d+)\.self_attn\.indexer\.k_norm$", n))
        }
    )
    spec = load_spec("glm-5.2-fp8")
    assert spec.arch.indexer is not None
    ours = [i for i, full in enumerate(spec.arch.indexer.layers) if full]
    assert with_indexer == [*ours, 78]  # layer 78 is the MTP layer, which keeps its indexer


@pytest.mark.parametrize("model", ["glm-5.2", "glm-5.2-fp8"])
def test_glm52_parameter_counts_are_glm5_less_57_indexers(model: str) -> None:
    spec = load_spec(model)
    assert spec.total_params_main == GLM5_MAIN - 57 * GLM_INDEXER == 743_377_019_904
    assert spec.total_params_stored == GLM5_STORED - 57 * GLM_INDEXER == 753_329_940_480


def test_glm52_kv_bytes_cache_indexer_keys_only_on_full_layers() -> None:
    spec = load_spec("glm-5.2")
    # MLA latent per layer (fp8: 512 + 4 * 4 scales + 64 * 2 rope = 656; bf16: 576 * 2) on 78
    # layers, plus the fp8 indexer key (128 + one fp32 scale) on the 21 full layers.
    assert kv_bytes_per_token(spec, "fp8") == 78 * 656 + 21 * 132 == 53_940
    assert kv_bytes_per_token(spec, "bf16") == 78 * 1152 + 21 * 132 == 92_628


def test_glm52_fp8_checkpoint_is_glm5_fp8_less_57_indexers() -> None:
    """Removing 57 indexers removes their FP8 blocks and bf16 weights_proj, nothing else."""
    fp8_block = lambda out, inp: out * inp + 4 * -(-out // 128) * -(-inp // 128)  # noqa: E731
    per_layer = fp8_block(32 * 128, 2048) + fp8_block(128, 6144) + 2 * (2 * 128) + 2 * (32 * 6144)
    glm5 = weight_bytes(load_spec("glm-5-fp8"), "fp8").total_bytes
    glm52 = weight_bytes(load_spec("glm-5.2-fp8"), "fp8").total_bytes
    assert glm5 - glm52 == 57 * per_layer


def test_deepseek_v32_is_deepseek_v3_plus_one_indexer_per_layer() -> None:
    spec = load_spec("deepseek-v3.2")
    assert spec.arch.model_type == "deepseek_v32"
    assert spec.arch.indexer is not None and spec.arch.indexer.num_indexer_layers == 61
    assert spec.total_params_main == DSV3_MAIN + 61 * DS_INDEXER == 671_877_944_064
    # The MTP layer carries its own indexer too: "685B" on the hub.
    assert spec.total_params_stored == DSV3_STORED + 62 * DS_INDEXER == 685_355_329_792
    assert spec.total_params_stored / 1e9 == pytest.approx(685, abs=0.5)
    assert kv_bytes_per_token(spec, "fp8") == 61 * (656 + 132)


def test_new_models_are_indexed_with_family_and_checkpoints() -> None:
    index = model_index()
    assert index["glm-5.2"].family == "GLM-5"
    assert index["glm-5.2"].checkpoint("fp8") == "zai-org/GLM-5.2-FP8"
    assert index["deepseek-v3.2"].hf_repo == "deepseek-ai/DeepSeek-V3.2"
    assert "glm-5.3" not in index  # no retrievable config.json; see index.yaml
