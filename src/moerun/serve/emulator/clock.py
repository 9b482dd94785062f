"""The emulator's clock: real time (optionally scaled), or virtual time for tests.

`Clock` is the one interface the emulated engine uses: `now()` in emulated seconds and
`sleep_until(t)`. `ScaledClock` runs `time_scale` emulated seconds per real second.
`VirtualTimeLoop` is an asyncio event loop whose time jumps to the next timer whenever every
task is waiting, so a test runs minutes of emulated serving in the CPU time it costs, with
exact timing; use it with `ScaledClock(source=loop.time)` and in-process transports or real
127.0.0.1 sockets between its own tasks (bytes in flight between them are awaited in real time
before the clock moves; a socket the loop waits on with no timer pending is a deadlock error).
"""

from __future__ import annotations

import asyncio
import selectors
import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar

from moerun.serve.emulator.loopback import LoopbackWatch

T = TypeVar("T")


class Clock(Protocol):
    """Emulated time."""

    def now(self) -> float:
        """Emulated seconds since the clock started."""
        ...

    async def sleep_until(self, t_s: float) -> None:
        """Return once `now() >= t_s` (at once if it already is)."""
        ...

    def call_at(self, t_s: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
        """Run `callback` in the event loop once `now() >= t_s`."""
        ...


class ScaledClock:
    """`time_scale` emulated seconds per second of `source` (the monotonic clock)."""

    def __init__(
        self, time_scale: float = 1.0, *, source: Callable[[], float] = time.monotonic
    ) -> None:
        if not time_scale > 0:
            raise ValueError("the time scale must be positive")
        self.time_scale = time_scale
        self.source = source
        self.t0 = source()

    def now(self) -> float:
        """See `Clock.now`."""
        return (self.source() - self.t0) * self.time_scale

    async def sleep_until(self, t_s: float) -> None:
        """See `Clock.sleep_until`."""
        delay = (t_s - self.now()) / self.time_scale
        if delay > 0:
            await asyncio.sleep(delay)

    def call_at(self, t_s: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
        """See `Clock.call_at`."""
        delay = max(0.0, (t_s - self.now()) / self.time_scale)
        return asyncio.get_running_loop().call_later(delay, callback)


_FileObject = Any  # int | HasFileno (the selectors module keeps its alias private)

# The longest real wait for bytes between two sockets of the loop before the clock moves
# anyway (TCP's persist timer starts at 200 ms; a peer that never reads must not hang a test).
MAX_DELIVERY_WAIT_S = 0.5


class _VirtualSelector(selectors.SelectSelector):
    """Polls without blocking; a would-be wait advances the virtual time instead, once the
    bytes in flight between the loop's own sockets have arrived (`.loopback`)."""

    def __init__(self) -> None:
        super().__init__()
        self.now_s = 0.0
        self._loopback = LoopbackWatch()
        self._reading: set[int] = set()

    def register(
        self, fileobj: _FileObject, events: int, data: Any = None
    ) -> selectors.SelectorKey:
        """See `selectors.BaseSelector.register`."""
        key = super().register(fileobj, events, data)
        self._loopback.add(key.fd)
        if events & selectors.EVENT_READ:
            self._reading.add(key.fd)
        return key

    def unregister(self, fileobj: _FileObject) -> selectors.SelectorKey:
        """See `selectors.BaseSelector.unregister`."""
        key = super().unregister(fileobj)
        self._loopback.discard(key.fd)
        self._reading.discard(key.fd)
        return key

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        events = super().select(0)
        if events or timeout == 0:
            return events
        events = self._delivered()
        if events:
            return events
        if timeout is None:
            raise RuntimeError("virtual time: every task waits and no timer is set (deadlock)")
        self.now_s += timeout
        return events

    def _delivered(self) -> list[tuple[selectors.SelectorKey, int]]:
        """Wait in real time while the kernel still holds bytes one of the loop's sockets sent
        another that is reading; what became ready then (nothing: none were in flight)."""
        deadline = time.monotonic() + MAX_DELIVERY_WAIT_S
        while self._loopback.undelivered(self._reading) and time.monotonic() < deadline:
            events = super().select(0.001)
            if events:
                return events
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop on virtual time (see the module docstring)."""

    def __init__(self) -> None:
        self._virtual = _VirtualSelector()
        super().__init__(self._virtual)

    def time(self) -> float:
        """Virtual seconds since the loop was made."""
        return self._virtual.now_s


def run_virtual(main: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on a fresh `VirtualTimeLoop`."""
    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        return runner.run(main)
