"""A listening socket that finds dead clients: ``TCP_USER_TIMEOUT`` for the server's connections.

When a client's network goes away without a FIN or an RST (a laptop closed, a phone out of
coverage, a NAT or firewall that forgot the connection), the server's kernel is never told.
A stream's ``send_timeout`` ends it once what it wrote waits unacknowledged that long, where
the server shows the connection (uvicorn; see :mod:`litestar_sse.asgi._transport`). Elsewhere,
or without a send timeout, a stream that only pings is not ended: a ping is a few bytes, the
buffers never fill, every ``send()`` completes, and the kernel retransmits the unacknowledged
pings for about 15 minutes on Linux (``net.ipv4.tcp_retries2 = 15``) before it declares the
connection dead. Until then the stream, its producer and its broadcast subscription stay open.

``TCP_USER_TIMEOUT`` (Linux, RFC 5482) bounds that: a connection whose sent data stays
unacknowledged for that long is closed by the kernel, and the server sees a disconnect. Linux
copies the option of a listening socket to every connection it accepts, so setting it once,
on the socket the server listens on, covers every stream. Servers do not set it, so this
module makes the listening socket for them: pass it to uvicorn with
``uvicorn.Server(config).run(sockets=[sock])``, or to ``uvicorn --fd`` in a child process.
"""

from __future__ import annotations

import socket

from litestar_sse._validation import check_count, check_seconds

__all__ = ("listening_socket",)


def listening_socket(
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    user_timeout: float | None = 30.0,
    backlog: int = 2048,
    reuse_port: bool = False,
) -> socket.socket:
    """Bind a TCP socket to ``host:port`` and listen, with ``TCP_USER_TIMEOUT`` set.

    Every connection accepted on it inherits the user timeout (Linux): data it sends that
    stays unacknowledged for ``user_timeout`` seconds makes the kernel close the connection,
    and the server reports a disconnect to the app. With pings every ``ping_interval``
    seconds, a stream whose client vanished is closed within about ``ping_interval +
    user_timeout`` seconds instead of some 15 minutes. It also ends a connection whose
    client stopped reading (a zero receive window) for that long, as ``send_timeout`` does.

    Example:
        .. code-block:: python

            import uvicorn

            from litestar_sse import listening_socket

            sock = listening_socket("0.0.0.0", 8000, user_timeout=30)
            uvicorn.Server(uvicorn.Config("app:app")).run(sockets=[sock])

    Args:
        host: The address to listen on; one with a ``:`` is an IPv6 address.
        port: The port (``0`` for any free one).
        user_timeout: Seconds sent data may stay unacknowledged before the kernel closes the
            connection. ``None`` leaves the system default (about 15 minutes on Linux).
        backlog: The length of the queue of connections not yet accepted.
        reuse_port: Set ``SO_REUSEPORT``, so several processes may listen on the same port.

    Returns:
        A blocking, listening socket (the server makes it non-blocking). ``SO_REUSEADDR`` is
        set, as servers do, so a restarted server can bind at once.

    Raises:
        TypeError: ``user_timeout`` is not a number, or ``backlog`` not an int.
        ValueError: ``user_timeout`` is not a positive number of seconds, or ``backlog`` < 1.
        NotImplementedError: ``user_timeout`` on a system without ``TCP_USER_TIMEOUT``
            (anything but Linux); pass ``None`` there.
        OSError: the address cannot be bound.
    """
    timeout_ms = _user_timeout_ms(user_timeout)
    check_count(backlog, "backlog", minimum=1)
    option: int | None = getattr(socket, "TCP_USER_TIMEOUT", None)
    if timeout_ms is not None and option is None:
        raise NotImplementedError(
            "TCP_USER_TIMEOUT is only available on Linux; pass user_timeout=None"
        )
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if timeout_ms is not None and option is not None:
            sock.setsockopt(socket.IPPROTO_TCP, option, timeout_ms)
        sock.bind((host, port))
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


def _user_timeout_ms(value: float | None) -> int | None:
    seconds = check_seconds(value, "user_timeout")
    return None if seconds is None else max(1, round(seconds * 1000))
