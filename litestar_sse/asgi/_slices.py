"""Large bodies go out in slices, so that a stream costs the server a bounded copy per send.

A server copies every body it sends: uvicorn joins it with the chunk framing into a new
``bytes``, and the transport keeps what the socket did not take. One send of a 48 MiB event
to 20 clients that stopped reading therefore holds 20 private copies of it (about 1 GiB),
however many references the app shares. Sent in slices of at most :data:`MAX_SEND_BYTES`,
each stream holds one slice; the next waits for the server's flow control.

The slices of one body are one write for the stream: it stays ``WRITING`` from the first to
the last (no ping between them, the send timeout covering each slice), and a graceful stop
that interrupts a body already partly sent completes it before its closing bytes, so the
client never reads half an event followed by another. The writes themselves are methods of
:class:`~litestar_sse.asgi._stream.ASGIStreamingResponse` (``_send_slices``, ``_send_rest``):
their state is the stream's.
"""

from __future__ import annotations

from typing import Final

__all__ = ("MAX_SEND_BYTES",)

MAX_SEND_BYTES: Final = 64 * 1024
"""Most bytes in one ASGI send: a larger body goes out in slices of this size."""
