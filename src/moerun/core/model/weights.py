"""Weight bytes per storage format, tensor by tensor.

Formats and the bytes of a converted Linear weight [out, in]:
  bf16   2 bytes per element (router score-correction biases stay fp32, 4 bytes).
  fp8    e4m3, one fp32 scale per 128x128 block: out*in + 4*ceil(out/128)*ceil(in/128)
         (DeepSeek-V3 / GLM-5-FP8 block quantization).
  int4   weight-only AWQ/GPTQ, group 128 along `in`: out*in/2 packed weights plus, per group
         and output row, an fp16 scale (2 B) and a packed 4-bit zero point (0.5 B).
  nvfp4  e2m1 with one fp8 e4m3 scale per 16 elements plus two fp32 per-tensor scales
         (NVIDIA ModelOpt): out*in/2 + out*ceil(in/16) + 8.
  mxfp4  e2m1 with one e8m0 scale per 32 elements (OCP MX): out*in/2 + out*ceil(in/32).
nvfp4 checkpoints keep the non-expert Linears in fp8; tensors a format does not convert stay
bf16 (fp32 ones stay fp32).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from moerun.core.model.model_spec import ModelSpec
from moerun.core.model.tensors import TensorGroup

# What each format stores (expert Linears, other Linears outside the keep-list). NVIDIA's
# GLM-5 NVFP4 checkpoint quantizes the experts to nvfp4 and keeps the other Linears fp8 (its
# 434 GB matches this); MXFP4 checkpoints (gpt-oss style) quantize the experts only.
FORMAT_PLAN: dict[str, tuple[str, str]] = {
    "bf16": ("bf16", "bf16"),
    "fp8": ("fp8", "fp8"),
    "int4": ("int4", "int4"),
    "nvfp4": ("nvfp4", "fp8"),
    "mxfp4": ("mxfp4", "bf16"),
}
WEIGHT_FORMATS = tuple(FORMAT_PLAN)

# Linear weights kept in bf16 by every format when the config lists none: the embeddings and
# heads, MoE router gates, the DSA indexer's head-weight projection and the MTP eh_proj. This
# is exactly the Linear part of GLM-5-FP8's `modules_to_not_convert`.
DEFAULT_KEEP_SUFFIXES = (
    "embed_tokens",
    "lm_head",
    "shared_head.head",
    "mlp.gate",
    "indexer.weights_proj",
    "eh_proj",
)

# GLM-5-FP8 lists the indexer's weights_proj under another module name.
MODULE_ALIASES = {"self_attn.indexers_proj": "self_attn.indexer.weights_proj"}


@dataclass(frozen=True, slots=True)
class WeightBytes:
    """Bytes of a checkpoint in one format, split into converted and high-precision tensors."""

    format: str
    total_bytes: int
    converted_bytes: int
    high_precision_bytes: int
    converted_params: int
    high_precision_params: int


def converted_bytes(fmt: str, out_features: int, in_features: int) -> int:
    """Bytes of one Linear weight [out, in] converted to `fmt`."""
    n = out_features * in_features
    if fmt == "bf16":
        return 2 * n
    if fmt == "fp8":
        return n + 4 * math.ceil(out_features / 128) * math.ceil(in_features / 128)
    if fmt == "int4":
        groups = math.ceil(in_features / 128) * out_features
        return math.ceil(n / 2) + groups * 2 + math.ceil(groups / 2)
    if fmt == "nvfp4":
        return math.ceil(n / 2) + out_features * math.ceil(in_features / 16) + 8
    if fmt == "mxfp4":
        return math.ceil(n / 2) + out_features * math.ceil(in_features / 32)
    raise ValueError(f"unknown weight format {fmt!r}")


def keep_list(spec: ModelSpec) -> frozenset[str]:
    """Module names (exact) that stay high precision, from the config when it lists them."""
    if spec.modules_to_not_convert is None:
        return frozenset()
    names = set()
    for module in spec.modules_to_not_convert:
        for alias, real in MODULE_ALIASES.items():
            module = module.replace(alias, real)
        names.add(module)
    return frozenset(names)


def storage_format(tensor: TensorGroup, fmt: str, keep: frozenset[str]) -> str:
    """The format this tensor is stored in when the checkpoint is in `fmt`."""
    if tensor.fp32:
        return "fp32"
    if not tensor.is_linear or tensor.module in keep:
        return "bf16"
    if tensor.module.endswith(DEFAULT_KEEP_SUFFIXES):
        return "bf16"
    experts_fmt, other_fmt = FORMAT_PLAN[fmt]
    return experts_fmt if tensor.component in ("routed_experts", "shared_experts") else other_fmt


def tensor_bytes(tensor: TensorGroup, fmt: str, keep: frozenset[str]) -> int:
    """Bytes of a tensor group in `fmt`."""
    stored = storage_format(tensor, fmt, keep)
    if stored == "fp32":
        return 4 * tensor.numel
    if stored == "bf16":
        return 2 * tensor.numel
    out_f, in_f = tensor.shape
    return converted_bytes(stored, out_f, in_f) * tensor.count


def weight_bytes(
    spec: ModelSpec,
    fmt: str,
    *,
    include_mtp: bool = True,
) -> WeightBytes:
    """Checkpoint bytes in `fmt` (with the MTP layers unless `include_mtp` is False)."""
    if fmt not in FORMAT_PLAN:
        raise ValueError(f"unknown weight format {fmt!r}")
    keep = keep_list(spec)
    conv_b = hp_b = conv_p = hp_p = 0
    for t in spec.tensors:
        if t.mtp and not include_mtp:
            continue
        b = tensor_bytes(t, fmt, keep)
        if storage_format(t, fmt, keep) not in ("bf16", "fp32"):
            conv_b, conv_p = conv_b + b, conv_p + t.numel
        else:
            hp_b, hp_p = hp_b + b, hp_p + t.numel
    return WeightBytes(fmt, conv_b + hp_b, conv_b, hp_b, conv_p, hp_p)
