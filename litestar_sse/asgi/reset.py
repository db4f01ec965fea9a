"""Resetting the connection of a stream whose client does not read: the hard end of a stream.

ASGI gives an app no way to drop a connection. When a stream ends, the server closes the
connection gracefully: asyncio's ``transport.close()`` first writes out what the transport
still buffers, and the kernel keeps the socket's unsent bytes to deliver them. A client that
stopped reading never takes them, so the connection stays open for ever: its file descriptor,
its buffers (up to a few MiB on a fast link), and, at shutdown, the server itself (uvicorn
waits for its connections to close before it exits).

So a hard end resets the connection: ``SO_LINGER`` 0, then ``transport.abort()``. The kernel
drops the unsent bytes and sends an RST, the server's protocol sees the connection lost at once.
It is done only where something is left unsent (the client is not reading), only on a stream's
stop path, and only where the server shows its transport: uvicorn's request task runs a method
of an object whose ``transport`` is the connection's (both its HTTP implementations, asyncio or
uvloop). Elsewhere (granian, test clients) nothing is done and the server closes as before.
This is the one place that reads a server's internals; ``tests/e2e`` checks it on uvicorn.
"""

from __future__ import annotations

import contextlib
import socket
import struct
from typing import Any, Final

try:  # POSIX; on Windows only the transport's buffer is counted
    import fcntl
    import termios
except ImportError:  # pragma: no cover
    fcntl = termios = None  # type: ignore[assignment]

# SIOCOUTQ, for a TCP socket (Linux): its bytes not yet acknowledged by the client.
_OUTQ: Final = getattr(termios, "TIOCOUTQ", None)

__all__ = ("connection_of", "pending_output", "reset_connection")

_LINGER_ZERO: Final = struct.pack("ii", 1, 0)


def connection_of(task: Any) -> Any | None:
    """The transport of the connection ``task`` (a request's task) serves, or ``None``."""
    coro = getattr(task, "get_coro", lambda: None)()
    frame = getattr(coro, "cr_frame", None)
    if frame is None:
        return None
    transport = getattr(frame.f_locals.get("self"), "transport", None)
    if callable(getattr(transport, "abort", None)) and callable(
        getattr(transport, "get_write_buffer_size", None)
    ):
        return transport
    return None


def pending_output(transport: Any) -> int:
    """Bytes written to the connection that its client has not taken yet, as far as known:
    the transport's buffer plus the socket's unsent and unacknowledged bytes (Linux)."""
    pending = 0
    with contextlib.suppress(Exception):  # a transport (or socket) closed meanwhile
        pending = int(transport.get_write_buffer_size())
        sock = transport.get_extra_info("socket")
        if _OUTQ is not None and sock is not None:
            pending += struct.unpack("i", fcntl.ioctl(sock.fileno(), _OUTQ, b"\0\0\0\0"))[0]
    return pending


def reset_connection(transport: Any) -> None:
    """Drop the connection at once: its unsent bytes are discarded, the client gets an RST."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError, ValueError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
    transport.abort()
