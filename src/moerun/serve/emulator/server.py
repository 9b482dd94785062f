"""Serve the emulator with uvicorn (uvloop and httptools when installed)."""

from __future__ import annotations

import logging
import socket

import uvicorn

from moerun.serve.emulator.app import EmulatorApp
from moerun.serve.emulator.generation import DroppedConnection


class _QuietDrops(logging.Filter):
    """Injected connection drops are not server errors: keep their tracebacks out of the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DroppedConnection)


def bind_listener(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, bound before anything says it is serving.

    OSError (address in use, no such address, permission) reaches the caller, which turns it
    into one line; uvicorn would log a traceback-less error and exit 3 after start-up."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, addr = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(4096)
    except OSError:
        sock.close()
        raise
    return sock


def serve(
    app: EmulatorApp,
    *,
    host: str,
    port: int,
    log_level: str = "warning",
    sock: socket.socket | None = None,
) -> None:
    """Serve until interrupted (on `sock` when given, already bound to host:port)."""
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
    uvicorn.Server(config).run(sockets=None if sock is None else [sock])
