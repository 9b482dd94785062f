"""Running the gateway under uvicorn (uvloop when installed) behind its front door."""

from __future__ import annotations

import importlib.util
import logging
import socket
import sys

import uvicorn

from moerun.errors import StoreError, UsageError
from moerun.serve.gateway.app import GatewayApp
from moerun.serve.gateway.config import GatewayConfig
from moerun.serve.gateway.guard.front_door import DoorLimits, door_protocol
from moerun.store.migrate import upgrade


def listen_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket with TCP_NODELAY (accepted sockets inherit it on Linux)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at the time of each record."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def configure_logging(access_log: bool) -> None:
    """Structured access lines on stderr (no prompt contents), warnings and errors too."""
    main = logging.getLogger("moerun.gateway")
    if not any(isinstance(h, _Stderr) for h in main.handlers):
        handler = _Stderr()
        handler.setFormatter(logging.Formatter("%(message)s"))
        main.addHandler(handler)
    main.setLevel(logging.INFO)
    main.propagate = False
    logging.getLogger("moerun.gateway.access").setLevel(
        logging.INFO if access_log else logging.WARNING
    )


def serve(config: GatewayConfig, host: str, port: int) -> None:
    """Serve until interrupted; a ledger or limiter that cannot start is a StoreError."""
    upgrade(config.database_url)  # fail early, with one clear line, if the ledger is unusable
    try:
        sock = listen_socket(host, port)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    configure_logging(config.settings.server.access_log)
    app = GatewayApp(config)
    server = config.settings.server
    limits = DoorLimits(
        max_head_bytes=server.max_head_bytes,
        header_timeout_s=server.header_timeout_s,
        body_timeout_s=server.body_timeout_s,
        max_connections=server.max_connections,
    )
    uv_config = uvicorn.Config(
        app,
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        http=door_protocol(limits),
        lifespan="on",
        access_log=False,
        log_level="warning",
        server_header=False,
        date_header=False,
        timeout_keep_alive=server.keep_alive_s,  # type: ignore[arg-type]
    )
    uvicorn.Server(uv_config).run(sockets=[sock])
    if app.startup_error is not None:
        raise StoreError(f"the gateway did not start: {app.startup_error}")
