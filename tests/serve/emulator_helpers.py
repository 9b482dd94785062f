"""Helpers for the emulator's tests: a deployment, an emulator in a uvicorn thread."""

from __future__ import annotations

from typing import Any

from moerun.core.deploy.deployment import Deployment
from tests.conftest import make_deployment
from tests.fixtures.servers import UvicornThread

MODEL = "glm-5.1"


def glm5_on_h200() -> Deployment:
    """GLM-5.1 on one 8xH200 node, TP8, fp8."""
    return make_deployment("glm-5.1", "h200_sxm", 8)


def emulator_server(app: Any) -> UvicornThread:
    """The emulator in a uvicorn thread, on uvloop as `moerun emulate` runs it."""
    return UvicornThread(app, loop="auto")
