"""Servers for the load generator's tests, each on 127.0.0.1 in its own thread and loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.fixtures.fixed_timing import FixedTiming, start_fixed_server


class ThreadServer:
    """An asyncio server factory run in a background thread; `port` once started."""

    def __init__(self, start: Callable[[], Any]) -> None:
        self._start = start
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(self._start())
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()
        self._loop.run_until_complete(server.wait_closed())
        self._loop.close()

    def __enter__(self) -> ThreadServer:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    @property
    def url(self) -> str:
        """The server root."""
        return f"http://127.0.0.1:{self.port}"


def fixed_server(timing: FixedTiming) -> ThreadServer:
    """A fixed-timing OpenAI server (tests.fixtures.fixed_timing) in a thread."""
    return ThreadServer(lambda: start_fixed_server("127.0.0.1", 0, timing))


def raw_server(answer: bytes) -> ThreadServer:
    """A server that answers every connection with `answer` and closes it."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        writer.write(answer)
        await writer.drain()
        writer.close()

    return ThreadServer(lambda: asyncio.start_server(handle, "127.0.0.1", 0))


@pytest.fixture
def fast_server() -> Iterator[ThreadServer]:
    """A fixed-timing server: TTFT 20 ms, ITL 5 ms."""
    with fixed_server(FixedTiming(ttft_s=0.02, itl_s=0.005)) as srv:
        yield srv
