"""`LoopbackWatch`: whether the kernel still holds bytes between two sockets of this process
for a peer that reads them (what a virtual-time loop waits for before its clock moves)."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator

import pytest

from moerun.serve.emulator.loopback import LoopbackWatch

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="SIOCOUTQNSD is Linux's")


@pytest.fixture
def sockets() -> Iterator[tuple[socket.socket, socket.socket, socket.socket]]:
    """(listener, client, server): a connection whose receiver takes at most a few KB."""
    listener = socket.socket()
    # inherited by the accepted socket, before the handshake sets the window
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    client = socket.create_connection(listener.getsockname())
    server, _ = listener.accept()
    yield listener, client, server
    for s in (client, server, listener):
        s.close()


def _fill(sender: socket.socket) -> int:
    """Send until the receiver's window and the sender's queue are full; bytes sent."""
    sender.setblocking(False)
    sent = 0
    try:
        while True:
            sent += sender.send(b"x" * 65536)
    except BlockingIOError:
        return sent


def test_bytes_queued_for_a_reading_peer_are_in_flight_until_it_has_them(
    sockets: tuple[socket.socket, socket.socket, socket.socket],
) -> None:
    listener, client, server = sockets
    watch = LoopbackWatch()
    for s in sockets:
        watch.add(s.fileno())
    assert not watch.undelivered({server.fileno(), client.fileno(), listener.fileno()})
    sent = _fill(client)
    assert sent > 4096  # more than the receiver's window: the rest waits in the client's queue
    assert watch.undelivered({server.fileno()})
    # a peer that is not reading (paused, or not this loop's) holds nothing up
    assert not watch.undelivered(set())
    assert not watch.undelivered({client.fileno(), listener.fileno()})
    server.settimeout(5.0)
    got = 0
    while got < sent:
        got += len(server.recv(1 << 20))
    assert got == sent
    assert not watch.undelivered({server.fileno()})


def test_sockets_no_longer_watched_and_other_files_are_not_senders(
    sockets: tuple[socket.socket, socket.socket, socket.socket],
) -> None:
    _, client, server = sockets
    r, w = socket.socketpair()  # not TCP (asyncio's self-pipe is one)
    with r, w:
        w.send(b"queued")
        watch = LoopbackWatch()
        for s in (client, server, r, w):
            watch.add(s.fileno())
        _fill(client)
        watch.discard(client.fileno())
        assert not watch.undelivered({server.fileno(), r.fileno()})
        # the reverse direction: the server's queue holds nothing
        watch.add(client.fileno())
        assert not watch.undelivered({client.fileno()})
