"""Who may follow a topic, and for how long: ``authorize``, expiries and re-checks.

``authorize(connection, topic)`` answers when a subscription opens: ``True`` (allowed),
``False`` (``403``), or an :class:`Authorization` that allows it until a time, as a token's
expiry does. While the stream is open, a :class:`Watch` ends it cleanly when the earliest expiry
passes, and, with ``reauthorize_every``, asks ``authorize`` again that often: a credential
revoked meanwhile ends the stream too. Either way the client gets the broadcaster's
``unauthorized_event`` and the end of the body, so it can renew its credentials before it
reconnects (where ``authorize`` is asked again).
"""

from __future__ import annotations

import asyncio
import datetime
import inspect
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from litestar.exceptions import PermissionDeniedException

from litestar_sse.asgi import StreamState

if TYPE_CHECKING:
    from litestar.connection import ASGIConnection

    from litestar_sse.asgi import ASGIStreamingResponse

__all__ = ("Authorization", "Authorize", "Watch", "authorize_topics")

_logger: Final = logging.getLogger("litestar_sse")
_OVER: Final = frozenset((StreamState.STOPPING, StreamState.FINISHING, StreamState.DONE))


@dataclass(frozen=True)
class Authorization:
    """What ``authorize`` may return instead of ``True``: allowed, until ``expires_at``.

    Args:
        expires_at: When the permission ends: a timezone-aware ``datetime``, or seconds since
            the epoch (``time.time()``, a JWT's ``exp``). ``None``: no end.
    """

    expires_at: datetime.datetime | float | None = None

    def __post_init__(self) -> None:
        value = self.expires_at
        if isinstance(value, datetime.datetime) and value.tzinfo is None:
            raise ValueError("expires_at must be a timezone-aware datetime (or epoch seconds)")
        if value is not None and not isinstance(value, (datetime.datetime, int, float)):
            raise TypeError(f"expires_at must be a datetime or epoch seconds, got {value!r}")

    def epoch(self) -> float | None:
        """``expires_at`` in seconds since the epoch."""
        value = self.expires_at
        if isinstance(value, datetime.datetime):
            return value.timestamp()
        return None if value is None else float(value)


Authorize = Callable[
    ["ASGIConnection[Any, Any, Any, Any] | None", str],
    "bool | Authorization | Awaitable[bool | Authorization]",
]
"""``authorize(connection, topic)``: may this connection follow this topic, and until when?"""


async def authorize_topics(
    authorize: Authorize, connection: Any, topics: Sequence[str]
) -> float | None:
    """Ask ``authorize`` about every topic; return the earliest expiry (epoch seconds) or None.

    Raises:
        PermissionDeniedException: a topic was refused, or its permission already expired.
    """
    earliest: float | None = None
    for topic in topics:
        answer = authorize(connection, topic)
        if inspect.isawaitable(answer):
            answer = await answer
        if isinstance(answer, Authorization):
            expiry = answer.epoch()
            if expiry is not None and expiry <= time.time():
                raise PermissionDeniedException(detail=f"Authorization for {topic!r} expired")
            if expiry is not None and (earliest is None or expiry < earliest):
                earliest = expiry
        elif not answer:
            raise PermissionDeniedException(detail=f"Not allowed to subscribe to topic {topic!r}")
    return earliest


class Watch:
    """Ends one stream when its authorization expires or a re-check refuses it.

    Started with the stream (a stream that never starts has no watch), and cancelled when the
    stream's subscription is closed, at its end; it holds the stream weakly.
    """

    __slots__ = (
        "_authorize",
        "_closing",
        "_connection",
        "_every",
        "_expires",
        "_stream",
        "_task",
        "_topics",
    )

    def __init__(
        self,
        *,
        authorize: Authorize,
        connection: Any,
        topics: Sequence[str],
        expires_at: float | None,
        every: float | None,
        closing: dict[str, bytes],
    ) -> None:
        self._authorize = authorize
        self._connection = connection
        self._topics = tuple(topics)
        self._expires = expires_at
        self._every = every
        self._closing = closing
        self._stream: weakref.ReferenceType[ASGIStreamingResponse] | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self, stream: ASGIStreamingResponse) -> None:
        """Watch ``stream``; call it on the stream's event loop, when the stream starts."""
        self._stream = weakref.ref(stream)
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name="litestar_sse.broadcast.watch"
        )

    def cancel(self) -> None:
        """Stop watching: the stream is over. The watch does not sleep until its next check
        holding the request of a stream that ended."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()

    async def _run(self) -> None:
        while True:
            delay = self._next_delay()
            if delay is None:
                return
            await asyncio.sleep(delay)
            stream = self._alive()
            if stream is None:
                return
            if self._expires is not None and time.time() >= self._expires:
                stream.stop("unauthorized", closing=self._closing["expired"])
                return
            if self._every is not None and not await self._still_allowed():
                stream = self._alive()
                if stream is not None:
                    stream.stop("unauthorized", closing=self._closing["revoked"])
                return

    def _next_delay(self) -> float | None:
        delays = []
        if self._expires is not None:
            delays.append(max(0.0, self._expires - time.time()))
        if self._every is not None:
            delays.append(self._every)
        return min(delays) if delays else None

    async def _still_allowed(self) -> bool:
        try:
            expires = await authorize_topics(self._authorize, self._connection, self._topics)
        except PermissionDeniedException:
            return False
        except Exception:
            _logger.exception("Exception raised by authorize; the stream is ended")
            return False
        if expires is not None:
            self._expires = expires if self._expires is None else min(self._expires, expires)
        return True

    def _alive(self) -> ASGIStreamingResponse | None:
        stream = None if self._stream is None else self._stream()
        if stream is None or stream.state in _OVER:
            return None
        return stream
