"""Shared fixtures: catalog configs and deployment factories."""

from __future__ import annotations

import copy
import gzip
import json
from dataclasses import replace
from importlib import resources
from typing import Any

import pytest

from moerun.catalog.engines import get_engine, get_reserve
from moerun.catalog.gpus import get_gpu
from moerun.catalog.models import load_spec, model_index
from moerun.core.deploy.deployment import Deployment
from moerun.core.deploy.parallel import Parallel
from moerun.core.model.model_spec import ModelSpec


def raw_kernel_file(gpu: str, engine: str = "sglang") -> dict[str, Any]:
    """A catalog kernel-table file as stored (`kernels/<gpu>/<engine>.json.gz`), read without
    moerun's loader, so tests compare the loader against the file."""
    f = resources.files("moerun.catalog").joinpath("data", "kernels", gpu, f"{engine}.json.gz")
    return dict(json.loads(gzip.decompress(f.read_bytes())))


def raw_config(model_id: str) -> dict[str, Any]:
    """A fresh copy of a catalog model's config.json."""
    entry = model_index()[model_id]
    text = resources.files("moerun.catalog").joinpath(f"models/{entry.file}").read_text("utf-8")
    return copy.deepcopy(json.loads(text))


def make_deployment(
    model: str | ModelSpec = "glm-5.1",
    gpu: str = "h200_sxm",
    num_gpus: int = 8,
    parallel: Parallel | None = None,
    engine: str = "vllm",
    **overrides: Any,
) -> Deployment:
    """A Deployment with sensible defaults (TP over all GPUs, fp8 weights and KV)."""
    spec = load_spec(model) if isinstance(model, str) else model
    dep = Deployment(
        model=spec,
        gpu=get_gpu(gpu),
        num_gpus=num_gpus,
        engine=get_engine(engine),
        reserve=get_reserve(),
        parallel=parallel or Parallel(tp=num_gpus),
    )
    return replace(dep, **overrides)


@pytest.fixture(scope="session")
def glm5() -> ModelSpec:
    return load_spec("glm-5.1")
