"""``listening_socket``: every accepted connection inherits ``TCP_USER_TIMEOUT`` (Linux).

The dead-peer detection itself, over a network cut without FIN, is measured in
``tests/soak/test_faults.py``; here, the option and what the kernel does with it on loopback.
"""

from __future__ import annotations

import errno
import os
import socket
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager

import pytest

import litestar_sse
from litestar_sse import listening_socket


def _user_timeout(sock: socket.socket) -> int:
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT)


@contextmanager
def _accepted(listener: socket.socket) -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connection to ``listener``: (client end, server end)."""
    with closing(listener):
        client = socket.create_connection(listener.getsockname()[:2], timeout=5)
        server, _ = listener.accept()
        with client, server:
            yield client, server


def test_exported_from_the_package() -> None:
    assert "listening_socket" in litestar_sse.__all__
    assert litestar_sse.listening_socket is listening_socket


def test_accepted_connections_inherit_the_user_timeout() -> None:
    listener = listening_socket("127.0.0.1", 0, user_timeout=2.5)
    assert _user_timeout(listener) == 2500
    assert listener.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
    assert listener.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 1
    with _accepted(listener) as (client, server):
        assert _user_timeout(server) == 2500
        assert _user_timeout(client) == 0  # the other side is not ours to change


def test_none_leaves_the_system_default() -> None:
    with _accepted(listening_socket("127.0.0.1", 0, user_timeout=None)) as (_, server):
        assert _user_timeout(server) == 0


def test_sub_millisecond_timeouts_round_up_to_one_millisecond() -> None:
    with closing(listening_socket("127.0.0.1", 0, user_timeout=0.0001)) as listener:
        assert _user_timeout(listener) == 1


def test_reuse_port_and_backlog() -> None:
    with closing(listening_socket("127.0.0.1", 0, reuse_port=True, backlog=1)) as first:
        assert first.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1
        port = first.getsockname()[1]
        # a second process (here: socket) may listen on the same port
        with closing(listening_socket("127.0.0.1", port, reuse_port=True)) as second:
            assert second.getsockname()[1] == port


def test_an_ipv6_address_gets_an_ipv6_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    families: list[int] = []
    real_socket = socket.socket

    def spy(family: int = -1, *args: object, **kwargs: object) -> socket.socket:
        families.append(family)
        return real_socket(family, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "socket", spy)
    try:
        listener = listening_socket("::1", 0, user_timeout=1)
    except OSError as exc:  # a machine without IPv6 (many containers): the family is enough
        assert exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT), exc  # noqa: PT017
        assert families == [socket.AF_INET6]
        return
    monkeypatch.undo()
    assert families == [socket.AF_INET6]
    with _accepted(listener) as (_, server):
        assert _user_timeout(server) == 1000


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (0, ValueError),
        (-1, ValueError),
        (float("nan"), ValueError),
        (float("inf"), ValueError),
        (True, TypeError),
        ("30", TypeError),
    ],
)
def test_invalid_user_timeout(value: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="user_timeout"):
        listening_socket("127.0.0.1", 0, user_timeout=value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "error"), [(0, ValueError), (-5, ValueError), (True, TypeError), (1.5, TypeError)]
)
def test_invalid_backlog(value: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="backlog"):
        listening_socket("127.0.0.1", 0, backlog=value)  # type: ignore[arg-type]


def test_a_system_without_the_option_is_told_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(socket, "TCP_USER_TIMEOUT")
    with pytest.raises(NotImplementedError, match="user_timeout=None"):
        listening_socket("127.0.0.1", 0, user_timeout=5)
    with closing(listening_socket("127.0.0.1", 0, user_timeout=None)) as listener:
        assert listener.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1


def test_a_bind_error_closes_the_socket() -> None:
    with closing(listening_socket("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        open_before = len(os.listdir("/proc/self/fd"))
        with pytest.raises(OSError, match="in use"):
            listening_socket("127.0.0.1", port)
        assert len(os.listdir("/proc/self/fd")) == open_before


@pytest.mark.timeout(20)
def test_the_kernel_closes_a_connection_whose_data_stays_unacknowledged() -> None:
    """A client that stops reading: once its window is zero, nothing sent is acknowledged,
    and the kernel gives up after the user timeout (a dead peer, minus the network cut)."""
    with _accepted(listening_socket("127.0.0.1", 0, user_timeout=0.5)) as (client, server):
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        server.setblocking(False)
        began = time.monotonic()
        stalled_since = began
        with pytest.raises(TimeoutError) as failure:  # noqa: PT012 - the loop is the point
            while time.monotonic() - began < 15:
                try:
                    server.send(b"x" * 65536)
                    stalled_since = time.monotonic()
                except BlockingIOError:
                    time.sleep(0.02)
        assert failure.value.errno == errno.ETIMEDOUT
        stalled = time.monotonic() - stalled_since
        assert 0.4 < stalled < 10, stalled
