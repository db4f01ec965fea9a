"""Large bodies go out in slices, so that a stream costs the server a bounded copy per send.

A server copies every body it sends: uvicorn joins it with the chunk framing into a new
``bytes``, and the transport keeps what the socket did not take. One send of a 48 MiB event
to 20 clients that stopped reading therefore holds 20 private copies of it (about 1 GiB),
however many references the app shares. Sent in slices of at most :data:`MAX_SEND_BYTES`,
each stream holds one slice; the next waits for the server's flow control.

The slices of one body are one write for the stream: it stays ``WRITING`` from the first to
the last (no ping between them, the send timeout covering each slice), and a graceful stop
that interrupts a body already partly sent completes it before its closing bytes, so the
client never reads half an event followed by another.
"""

from __future__ import annotations

from time import monotonic
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from litestar.types import Send

__all__ = ("MAX_SEND_BYTES", "SlicedWrites")

MAX_SEND_BYTES: Final = 64 * 1024
"""Most bytes in one ASGI send: a larger body goes out in slices of this size."""


class SlicedWrites:
    """The sliced writes of a stream (a mixin: the stream holds the attributes)."""

    # Empty, as for TimedStream: the attributes are slots of ASGIStreamingResponse.
    __slots__ = ()

    if TYPE_CHECKING:
        _last_write: float
        _partial: bytes | None
        _partial_sent: int

    async def _send_slices(self, send: Send, body: bytes, timed: bool) -> None:
        """Send ``body`` in slices; ``timed``: each slice restarts the send timeout."""
        self._partial, self._partial_sent = body, 0  # type: ignore[misc]
        await self._send_from(send, body, 0, timed)
        self._partial = None  # type: ignore[misc]

    async def _send_from(self, send: Send, body: bytes, start: int, timed: bool) -> None:
        size = len(body)
        while start < size:
            if timed:
                self._last_write = monotonic()  # type: ignore[misc]
            end = start + MAX_SEND_BYTES
            await send({"type": "http.response.body", "body": body[start:end], "more_body": True})
            start = self._partial_sent = end  # type: ignore[misc]

    async def _send_rest(self, send: Send) -> None:
        """Complete the body whose slices a stop interrupted, if any of it was sent.

        A slice whose send was cancelled counts as not sent: a server writes a body whole or
        not at all (uvicorn waits for its flow control first, then writes).
        """
        body, self._partial = self._partial, None  # type: ignore[misc]
        if body is not None and self._partial_sent:
            await self._send_from(send, body, self._partial_sent, True)
