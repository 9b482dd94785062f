"""Helpers for the emulator's tests: a deployment, an emulator in a uvicorn thread."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn

from moerun.core.deploy.deployment import Deployment
from tests.conftest import make_deployment

MODEL = "glm-5.1"


def glm5_on_h200() -> Deployment:
    """GLM-5.1 on one 8xH200 node, TP8, fp8."""
    return make_deployment("glm-5.1", "h200_sxm", 8)


class UvicornThread:
    """An ASGI app served on 127.0.0.1 in a background thread."""

    def __init__(self, app: Any) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="error", lifespan="on", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]})

    @property
    def url(self) -> str:
        """The server root."""
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> UvicornThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()
