"""The server's connection under a stream: what its client has taken, and its hard end.

**What the client took.** ``send_timeout`` bounds a write that blocks; but a write only blocks
once the transport's buffer is full, and the kernel's buffers below it absorb megabytes: a
client that reads nothing (or a byte now and then) of a slow feed never blocks a write for
minutes. So the timer also asks the kernel (Linux ``TCP_INFO``) how many bytes the client has
acknowledged in all (:func:`bytes_taken`) and how many are still waiting on the server's side
(:func:`pending_output`): see ``ASGIStreamingResponse._check_taken`` in
:mod:`~litestar_sse.asgi._stream`.

**The hard end.**
ASGI gives an app no way to drop a connection. When a stream ends, the server closes the
connection gracefully: asyncio's ``transport.close()`` first writes out what the transport
still buffers, and the kernel keeps the socket's unsent bytes to deliver them. A client that
stopped reading never takes them, so the connection stays open for ever: its file descriptor,
its buffers (up to a few MiB on a fast link), and, at shutdown, the server itself (uvicorn
waits for its connections to close before it exits).

So a hard end resets the connection: ``SO_LINGER`` 0, then ``transport.abort()``. The kernel
drops the unsent bytes and sends an RST, the server's protocol sees the connection lost at once.
It is done only where something is left unsent (the client is not reading), only on a stream's
stop path, and only where the server shows its transport: uvicorn's ``receive`` is a method of
an object whose ``transport`` is the connection's, and so is the coroutine its request task
runs (both its HTTP implementations, asyncio or uvloop). Elsewhere (granian, test clients)
nothing is done and the server closes as before. This is the one place that reads a server's
internals; ``tests/e2e`` checks it on uvicorn.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import sys
from typing import Any, Final

try:  # POSIX; on Windows only the transport's buffer is counted
    import fcntl
    import termios
except ImportError:  # pragma: no cover
    fcntl = termios = None  # type: ignore[assignment]

# SIOCOUTQ, for a TCP socket (Linux): its bytes not yet acknowledged by the client.
_OUTQ: Final = getattr(termios, "TIOCOUTQ", None)

__all__ = (
    "bytes_taken",
    "connection_of",
    "pending_output",
    "receiving_transport",
    "reset_connection",
)

_TCP_INFO: Final = getattr(socket, "TCP_INFO", None) if sys.platform == "linux" else None
_BYTES_ACKED: Final = 120  # offset of tcpi_bytes_acked (u64, Linux 4.2+) in struct tcp_info

_LINGER_ZERO: Final = struct.pack("ii", 1, 0)


def receiving_transport(receive: Any) -> Any | None:
    """The transport behind an ASGI ``receive`` that is a method of the server's request
    (uvicorn's), or ``None``: two attribute reads, no allocation, at every stream's start."""
    transport = getattr(getattr(receive, "__self__", None), "transport", None)
    return transport if _is_transport(transport) else None


def _is_transport(transport: Any) -> bool:
    return callable(getattr(transport, "abort", None)) and callable(
        getattr(transport, "get_write_buffer_size", None)
    )


def connection_of(task: Any) -> Any:
    """The transport of the connection ``task`` (a request's task) serves, or ``False`` where
    the server does not show it (a value that is looked up once)."""
    coro = getattr(task, "get_coro", lambda: None)()
    frame = getattr(coro, "cr_frame", None)
    if frame is None:
        return False
    # Reading a suspended coroutine's locals builds a frame object and a dict that live as
    # long as the coroutine: done on the stop path only, when receive() did not tell.
    transport = getattr(frame.f_locals.get("self"), "transport", None)
    return transport if _is_transport(transport) else False


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


def bytes_taken(transport: Any) -> int | None:
    """Bytes of the connection its client has acknowledged since it opened (Linux), or
    ``None`` where the system does not tell."""
    if _TCP_INFO is None:
        return None
    try:
        sock = transport.get_extra_info("socket")
        info = sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, 232)
    except Exception:  # no socket (a unix socket has no TCP_INFO), or closed meanwhile
        return None
    if len(info) < _BYTES_ACKED + 8:
        return None  # a kernel older than 4.2
    taken: int = struct.unpack_from("Q", info, _BYTES_ACKED)[0]
    return taken


def reset_connection(transport: Any) -> None:
    """Drop the connection at once: its unsent bytes are discarded, the client gets an RST."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError, ValueError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
    transport.abort()
