"""The receiving end of one event stream for the load generators: an asyncio protocol that
sends its request, reads the response head and hands the body bytes on.

Both fan-out clients (``benchmarks.fanout_client``, ``benchmarks.scale_client``) open
thousands of these, with no task per stream.
"""

from __future__ import annotations

import asyncio
from typing import cast


class StreamProtocol(asyncio.Protocol):
    """Sends ``request`` once connected; :meth:`body_of` takes the response head off the
    first reads and resolves ``ready`` (with a ``ConnectionError`` unless the status is 200)."""

    __slots__ = ("head", "ready", "request", "transport")

    def __init__(self, request: bytes, ready: asyncio.Future[None]) -> None:
        self.request = request
        self.ready = ready
        self.transport: asyncio.Transport | None = None
        self.head = b""  # the response head, until complete

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport; they implement it.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.request)

    def body_of(self, data: bytes) -> bytes | None:
        """The body bytes in ``data``: all of it once the head was read, what follows the
        head in the read that completes it, ``None`` before (or after a refusal)."""
        if self.ready.done():
            return data
        self.head += data
        end = self.head.find(b"\r\n\r\n")
        if end < 0:
            return None
        if not self.head.startswith(b"HTTP/1.1 200"):
            self.ready.set_exception(ConnectionError(self.head[:200].decode("latin-1")))
            return None
        body, self.head = self.head[end + 4 :], b""
        self.ready.set_result(None)
        return body
