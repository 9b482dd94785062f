"""Bytes the kernel still holds between two sockets of this process (Linux).

A virtual-time loop (`moerun.serve.emulator.clock`) whose tasks talk over real 127.0.0.1
sockets must not advance its clock while a transfer between them is unfinished: on the
emulated network it takes no time. The kernel moves loopback bytes in real time, and not
always at once: a sender's queued bytes can wait for the receiver's window update until the
kernel's deferred network work runs, milliseconds later on a busy host, and every poll that
finds nothing ready meanwhile jumps the clock to the next timer. In issue 15's fleet twin a
289 KB prompt reached its replica 26-36 virtual seconds late (its first 64 KB at once, the
rest at the gateway's 5 s health checks), once the fleet was idle and the only timers were
uvicorn's 0.1 s ticks and those health checks.
"""

from __future__ import annotations

import array
import socket
import sys

# linux/sockios.h: bytes in a TCP socket's send queue not sent yet. Unlike TIOCOUTQ it leaves
# out bytes sent and not yet acknowledged: a delayed ACK holds no transfer up.
SIOCOUTQNSD = 0x894B
_TCP = (socket.AF_INET, socket.AF_INET6)


def _names(fd: int) -> tuple[object, object] | None:
    """(own address, peer address) of a connected TCP socket; None for anything else."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError:  # not a socket
        return None
    try:
        if sock.family not in _TCP or sock.type != socket.SOCK_STREAM:
            return None
        return sock.getsockname(), sock.getpeername()
    except OSError:  # listening, or not connected yet
        return None
    finally:
        sock.detach()  # the fd stays open: it belongs to its transport


class LoopbackWatch:
    """The TCP sockets a selector watches, and whether bytes are on their way between two of
    them. `add` each registered fd, `discard` it when unregistered."""

    def __init__(self) -> None:
        self._tcp: set[int] = set()
        self._buf = array.array("i", [0])
        self.enabled = sys.platform == "linux"

    def add(self, fd: int) -> None:
        """Watch `fd` if it is a TCP socket."""
        if not self.enabled:
            return
        try:
            sock = socket.socket(fileno=fd)
        except OSError:  # not a socket
            return
        try:
            if sock.family in _TCP and sock.type == socket.SOCK_STREAM:
                self._tcp.add(fd)
        finally:
            sock.detach()

    def discard(self, fd: int) -> None:
        """Stop watching `fd`."""
        self._tcp.discard(fd)

    def undelivered(self, readers: set[int]) -> bool:
        """Whether a watched socket holds bytes not sent yet to a peer among `readers` (sockets
        of this process waiting to read)."""
        senders = [fd for fd in self._tcp if self._unsent_bytes(fd) > 0]
        if not senders:
            return False
        reading = {names[0] for fd in readers if (names := _names(fd)) is not None}
        return any((names := _names(fd)) is not None and names[1] in reading for fd in senders)

    def _unsent_bytes(self, fd: int) -> int:
        import fcntl  # Linux only (`enabled`)

        try:
            fcntl.ioctl(fd, SIOCOUTQNSD, self._buf, True)
        except OSError:  # listening, or not connected yet
            return 0
        return self._buf[0]
