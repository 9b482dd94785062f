"""A GLM-5.1 deployment on a GPU, engine and weight format (layout TP = num_gpus)."""

from __future__ import annotations

from moerun.catalog.engines import get_engine, get_reserve
from moerun.catalog.gpus import get_gpu
from moerun.catalog.models import load_spec
from moerun.core.deploy.deployment import Deployment
from moerun.core.deploy.parallel import Parallel


def glm5(gpu: str, engine: str, weights: str, num_gpus: int = 8) -> Deployment:
    """GLM-5.1 with TP over `num_gpus`."""
    return Deployment(
        model=load_spec("glm-5.1"),
        gpu=get_gpu(gpu),
        num_gpus=num_gpus,
        engine=get_engine(engine),
        reserve=get_reserve(),
        weights=weights,
        parallel=Parallel(tp=num_gpus),
    )
