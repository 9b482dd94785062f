"""Read a Hugging Face config.json into an Architecture, following the config, not a model table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from moerun.core.model.shape import MLA, Architecture, Indexer, MoE
from moerun.errors import ConfigError, UnsupportedModelError

# model_type -> architecture family. Kimi K2 ships a deepseek_v3 layout under its own type.
FAMILIES = {
    "glm_moe_dsa": "deepseek",
    "deepseek_v32": "deepseek",
    "deepseek_v3": "deepseek",
    "kimi_k2": "deepseek",
    "glm4_moe": "glm4_moe",
    "qwen3_moe": "qwen3_moe",
    "llama": "llama",
}
SUPPORTED_MODEL_TYPES = tuple(FAMILIES)

# Whether a family's MTP (nextn) layer stores its own embedding and head copies in the
# checkpoint. DeepSeek-V3's does (README_WEIGHTS.md: the MTP module shares but also stores
# embed_tokens and shared_head.head); GLM-5's does not (its 753,864,139,008 stored parameters
# leave no room for one); GLM-4.x is not known.
MTP_STORES_EMBED_HEAD: dict[str, bool | None] = {
    "deepseek_v3": True,
    "kimi_k2": True,
    "deepseek_v32": True,
    "glm_moe_dsa": False,
    "glm4_moe": None,
}


@dataclass(frozen=True, slots=True)
class HFConfig:
    """What a config.json says about a model: its architecture, name, context and format."""

    architecture: Architecture
    name: str
    max_position_embeddings: int
    # The checkpoint's own weight format ("bf16" or "fp8") and its unconverted modules.
    checkpoint_format: str
    modules_to_not_convert: tuple[str, ...] | None


def read_hf_config(config: dict[str, Any], name: str | None = None) -> HFConfig:
    """Read a parsed config.json (nested `text_config` is followed); ConfigError if unusable."""
    if not isinstance(config, dict):
        raise ConfigError("config.json must hold a JSON object")
    cfg = _flatten_text_config(config)
    model_type = cfg.get("model_type")
    if model_type not in FAMILIES:
        raise UnsupportedModelError(
            f"model_type {model_type!r} is not supported; supported: "
            + ", ".join(SUPPORTED_MODEL_TYPES)
        )
    family = FAMILIES[model_type]
    reader = _Reader(cfg, model_type)

    hidden = reader.positive_int("hidden_size")
    num_layers = reader.positive_int("num_hidden_layers")
    num_heads = reader.positive_int("num_attention_heads")
    num_kv_heads = reader.positive_int("num_key_value_heads", default=num_heads)
    head_dim = reader.positive_int("head_dim", default=hidden // num_heads)
    mla = _read_mla(reader) if family == "deepseek" else None
    indexer = _read_indexer(reader, num_layers) if "index_topk" in cfg else None
    moe = _read_moe(reader, family)
    moe_layers = _moe_layer_pattern(reader, family, num_layers, moe)
    num_mtp = reader.nonneg_int("num_nextn_predict_layers", default=0)
    quant = cfg.get("quantization_config") or {}
    checkpoint_format = "fp8" if quant.get("quant_method") == "fp8" else "bf16"
    not_convert = quant.get("modules_to_not_convert")

    architecture = Architecture(
        model_type=model_type,
        hidden_size=hidden,
        vocab_size=reader.positive_int("vocab_size"),
        num_layers=num_layers,
        num_attention_heads=num_heads,
        num_kv_heads=num_kv_heads,
        head_dim=head_dim,
        attention_bias=bool(cfg.get("attention_bias", False)),
        qk_norm=family == "qwen3_moe" or bool(cfg.get("use_qk_norm", False)),
        mla=mla,
        indexer=indexer,
        intermediate_size=reader.positive_int("intermediate_size"),
        moe=moe,
        moe_layers=moe_layers,
        num_mtp_layers=num_mtp,
        mtp_stores_embed_head=MTP_STORES_EMBED_HEAD.get(model_type),
        tie_word_embeddings=bool(cfg.get("tie_word_embeddings", False)),
        mlp_bias=bool(cfg.get("mlp_bias", False)),
    )
    return HFConfig(
        architecture=architecture,
        name=name or str(cfg.get("_name_or_path") or model_type),
        max_position_embeddings=reader.positive_int("max_position_embeddings", default=4096),
        checkpoint_format=checkpoint_format,
        modules_to_not_convert=tuple(not_convert) if isinstance(not_convert, list) else None,
    )


def _flatten_text_config(config: dict[str, Any]) -> dict[str, Any]:
    """Multimodal wrappers nest the language model under text_config: size that."""
    text = config.get("text_config")
    if isinstance(text, dict):
        merged = {k: v for k, v in config.items() if k != "text_config"}
        merged.update(text)
        if "model_type" in text:
            merged["model_type"] = text["model_type"]
        return merged
    return config


# Input bounds, not facts about any model: far above every published config (GLM-5 has 78
# layers, 256 experts, 202,752 positions), low enough that the per-layer and per-expert
# accounting stays instant. A field past its bound is a broken or hostile file.
_MAX_FIELD = {
    "num_hidden_layers": 4096,
    "num_nextn_predict_layers": 64,
    "n_routed_experts": 1 << 16,
    "num_experts": 1 << 16,
    "num_local_experts": 1 << 16,
    "max_position_embeddings": 1 << 26,
}
_MAX_ANY_FIELD = 1 << 31


class _Reader:
    """Typed access to config fields with errors that name the field."""

    def __init__(self, cfg: dict[str, Any], model_type: str) -> None:
        self.cfg = cfg
        self.model_type = model_type

    def _int(self, key: str, default: int | None) -> int:
        value = self.cfg.get(key, default)
        if value is None:
            if default is None:
                raise ConfigError(
                    f"config.json of model_type {self.model_type!r} lacks the required field "
                    f"{key!r}; pass the model's complete config.json"
                )
            value = default
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"config.json field {key!r} must be an integer, got {value!r}")
        bound = _MAX_FIELD.get(key, _MAX_ANY_FIELD)
        if value > bound:
            raise ConfigError(
                f"config.json field {key!r} is {value:,}, beyond the {bound:,} moerun accepts; "
                "check the file (no published model comes near)"
            )
        return value

    def positive_int(self, key: str, default: int | None = None) -> int:
        value = self._int(key, default)
        if value <= 0:
            raise ConfigError(f"config.json field {key!r} must be positive, got {value}")
        return value

    def nonneg_int(self, key: str, default: int | None = None) -> int:
        value = self._int(key, default)
        if value < 0:
            raise ConfigError(f"config.json field {key!r} must not be negative, got {value}")
        return value

    def optional_positive_int(self, key: str) -> int | None:
        if self.cfg.get(key) is None:
            return None
        return self.positive_int(key)


def _read_mla(reader: _Reader) -> MLA:
    return MLA(
        q_lora_rank=reader.optional_positive_int("q_lora_rank"),
        kv_lora_rank=reader.positive_int("kv_lora_rank"),
        qk_nope_head_dim=reader.positive_int("qk_nope_head_dim"),
        qk_rope_head_dim=reader.positive_int("qk_rope_head_dim"),
        v_head_dim=reader.positive_int("v_head_dim"),
    )


def _read_indexer(reader: _Reader, num_layers: int) -> Indexer:
    cfg = reader.cfg
    types = cfg.get("indexer_types")
    pattern = cfg.get("index_topk_pattern")
    if types is not None:
        layers = _indexer_types(types, num_layers)
    elif pattern is not None:
        if isinstance(pattern, str):
            unknown = set(pattern) - {"F", "S"}
            if unknown:
                raise ConfigError(
                    f"index_topk_pattern may hold only 'F' (full) and 'S' (shared), got {pattern!r}"
                )
            layers = _indexer_types([{"F": "full", "S": "shared"}[c] for c in pattern], num_layers)
        else:
            layers = _indexer_types(pattern, num_layers)
    else:
        # transformers GlmMoeDsaConfig: layer i runs its indexer when
        # max(i - offset + 1, 0) % freq == 0 (freq 1: every layer).
        freq = max(reader.positive_int("index_topk_freq", default=1), 1)
        offset = reader.nonneg_int("index_skip_topk_offset", default=2)
        layers = tuple(max(i - offset + 1, 0) % freq == 0 for i in range(num_layers))
    return Indexer(
        num_heads=reader.positive_int("index_n_heads"),
        head_dim=reader.positive_int("index_head_dim"),
        topk=reader.positive_int("index_topk"),
        layers=layers,
    )


def _indexer_types(types: Any, num_layers: int) -> tuple[bool, ...]:
    if not isinstance(types, list) or len(types) != num_layers:
        raise ConfigError(
            f"indexer_types must list one entry per layer ({num_layers}), got {types!r:.80}"
        )
    if any(t not in ("full", "shared") for t in types):
        raise ConfigError("indexer_types entries must be 'full' or 'shared'")
    if types[0] != "full":
        raise ConfigError("indexer_types[0] must be 'full': a shared layer needs an earlier one")
    return tuple(t == "full" for t in types)


def _read_moe(reader: _Reader, family: str) -> MoE | None:
    cfg = reader.cfg
    if family == "llama":
        return None
    experts_key = "num_experts" if family == "qwen3_moe" else "n_routed_experts"
    if not cfg.get(experts_key):
        return None
    moe_inter = reader.positive_int("moe_intermediate_size")
    if family == "qwen3_moe":
        shared = reader.nonneg_int("shared_expert_intermediate_size", default=0)
        router_bias = False
    else:
        shared = reader.nonneg_int("n_shared_experts", default=0) * moe_inter
        # DeepSeek-V3-style sigmoid routers carry an fp32 score-correction bias per expert;
        # GLM-4.x MoE routers always do.
        router_bias = family == "glm4_moe" or cfg.get("scoring_func") == "sigmoid"
    return MoE(
        num_routed_experts=reader.positive_int(experts_key),
        num_experts_per_tok=reader.positive_int("num_experts_per_tok"),
        moe_intermediate_size=moe_inter,
        shared_intermediate_size=shared,
        router_bias=router_bias,
    )


def _moe_layer_pattern(
    reader: _Reader, family: str, num_layers: int, moe: MoE | None
) -> tuple[bool, ...]:
    cfg = reader.cfg
    if moe is None:
        return (False,) * num_layers
    types = cfg.get("mlp_layer_types")
    if isinstance(types, list):
        if len(types) != num_layers or any(t not in ("dense", "sparse") for t in types):
            raise ConfigError("mlp_layer_types must list 'dense' or 'sparse' for every layer")
        return tuple(t == "sparse" for t in types)
    if family == "qwen3_moe":
        step = reader.positive_int("decoder_sparse_step", default=1)
        dense_only = set(cfg.get("mlp_only_layers") or [])
        return tuple(i not in dense_only and (i + 1) % step == 0 for i in range(num_layers))
    first_dense = reader.nonneg_int("first_k_dense_replace", default=0)
    freq = reader.positive_int("moe_layer_freq", default=1)
    return tuple(i >= first_dense and i % freq == 0 for i in range(num_layers))
