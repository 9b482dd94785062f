"""Serve the emulator with uvicorn (uvloop and httptools when installed)."""

from __future__ import annotations

import logging

import uvicorn

from moerun.serve.emulator.app import EmulatorApp
from moerun.serve.emulator.generation import DroppedConnection


class _QuietDrops(logging.Filter):
    """Injected connection drops are not server errors: keep their tracebacks out of the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DroppedConnection)


def serve(app: EmulatorApp, *, host: str, port: int, log_level: str = "warning") -> None:
    """Serve until interrupted."""
    logging.getLogger("uvicorn.error").addFilter(_QuietDrops())
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        lifespan="on",
        backlog=4096,
        timeout_keep_alive=60,
    )
    uvicorn.Server(config).run()
