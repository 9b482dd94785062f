"""The support matrix: verdicts as the sources state them (SGLang's and vLLM's GLM-5 pages)."""

from __future__ import annotations

from dataclasses import replace

from moerun.catalog.engines import get_engine
from moerun.catalog.gpus import get_gpu
from moerun.catalog.support import load_support
from moerun.core.deploy.mtp import Mtp
from moerun.core.deploy.parallel import Parallel
from moerun.core.deploy.support import support_for
from tests.core.deploy.factories_support import glm5


def test_sglang_cookbook_verdicts_for_amd() -> None:
    m = load_support()
    bf16 = glm5("mi300x", "sglang", "bf16")
    assert support_for(m, bf16).status == "verified"
    # "FP8 not verified on AMD"
    fp8 = support_for(m, glm5("mi300x", "sglang", "fp8"))
    assert fp8.status == "unverified" and "not verified on AMD" in fp8.reasons[0]
    # "EAGLE speculative decoding is not currently supported on AMD"
    assert support_for(m, replace(bf16, mtp=Mtp(1))).status == "unsupported"
    assert any("sglang.io" in s.ref for s in support_for(m, bf16).sources)


def test_vllm_recipe_verifies_h200_fp8_tp8_only() -> None:
    m = load_support()
    tp8 = replace(glm5("h200_sxm", "vllm", "fp8"), mtp=Mtp(1))
    verdict = support_for(m, tp8)
    assert verdict.status == "verified", verdict
    assert [s.id for s in verdict.sources] == ["vllm-recipe-glm5"]
    # the recipe shows TP8: DP-attention on vLLM is not shown anywhere we read
    dp8 = replace(tp8, parallel=Parallel(dp=8, ep=8))
    assert support_for(m, dp8).status == "unverified"
    # nor AMD
    assert support_for(m, glm5("mi300x", "vllm", "fp8")).status == "unverified"


def test_unknown_model_type_is_unverified_never_verified() -> None:
    m = load_support()
    dep = glm5("h200_sxm", "vllm", "fp8")
    arch = replace(dep.model.arch, model_type="qwen3_moe", indexer=None)
    other = replace(dep, model=replace(dep.model, arch=arch))
    verdict = support_for(m, other)
    assert verdict.status == "unverified" and verdict.sources == ()


def test_engine_factory_is_real() -> None:
    assert get_engine("sglang").name == "sglang" and get_gpu("mi300x").vendor == "amd"
