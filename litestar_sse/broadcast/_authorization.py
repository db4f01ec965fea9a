"""Who may follow a topic, and for how long: ``authorize``, expiries and re-checks.

``authorize(connection, topic)`` answers when a subscription opens: ``True`` (allowed),
``False`` (``403``), or an :class:`Authorization` that allows it until a time, as a token's
expiry does. While the subscription is read, a :class:`Watch` ends it when the earliest expiry
passes (on a timer of its own), and, with ``reauthorize_every``, asks ``authorize`` again that
often: a credential revoked meanwhile ends it too, and so does a re-check that does not answer
within ``authorize_timeout`` or raises (fail closed). A stream gets the broadcaster's
``unauthorized_event`` and the end of the body, so its client can renew its credentials before
it reconnects (where ``authorize`` is asked again); typed subscriptions yield
:class:`~litestar_sse.broadcast.AuthorizationEnded` last.
"""

from __future__ import annotations

import asyncio
import datetime
import inspect
import logging
import math
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from litestar.exceptions import PermissionDeniedException

from litestar_sse.asgi import _runtime as runtime

if TYPE_CHECKING:
    from litestar.connection import ASGIConnection

    from litestar_sse.broadcast._hub.subscription import Subscription

__all__ = (
    "DEFAULT_AUTHORIZE_TIMEOUT",
    "Authorization",
    "Authorize",
    "TopicRefused",
    "Watch",
    "authorize_topics",
)

_logger: Final = logging.getLogger("litestar_sse")

DEFAULT_AUTHORIZE_TIMEOUT: Final = 10.0
"""Seconds an awaitable ``authorize`` answer may take by default (``authorize_timeout``)."""

_LONGEST_TIMER: Final = 86_400.0
"""Longest single sleep of an expiry timer: a far expiry is re-armed daily, never one huge
delay (an event loop may refuse a timer that far away)."""


@dataclass(frozen=True)
class Authorization:
    """What ``authorize`` may return instead of ``True``: allowed, until ``expires_at``.

    Args:
        expires_at: When the permission ends: a timezone-aware ``datetime``, or seconds since
            the epoch (``time.time()``, a JWT's ``exp``), a finite number. ``None``: no end
            (``True`` says the same). ``nan`` and the infinities are refused: ``nan`` compares
            false with every time, so it would never expire, and "never" is spelt ``None``.

    Raises:
        TypeError: ``expires_at`` is neither a ``datetime``, a number nor ``None``.
        ValueError: a naive ``datetime``, or a number that is not finite.
    """

    expires_at: datetime.datetime | float | None = None

    def __post_init__(self) -> None:
        value = self.expires_at
        if isinstance(value, datetime.datetime):
            if value.tzinfo is None:
                raise ValueError("expires_at must be a timezone-aware datetime (or epoch seconds)")
            return
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"expires_at must be a datetime or epoch seconds, got {value!r:.60}")
        try:
            finite = math.isfinite(value)
        except OverflowError:  # an int too large for a float
            finite = False
        if not finite:
            raise ValueError(
                f"expires_at must be a finite number of epoch seconds, got {value!r:.60}; "
                "use expires_at=None (or return True) for a permission without end"
            )

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


class TopicRefused(PermissionDeniedException):
    """``authorize`` refused :attr:`topic`, its permission had expired, or no answer came in
    time (a ``403``); the caller may say which topic in its own words."""

    def __init__(self, topic: str, detail: str) -> None:
        super().__init__(detail=detail)
        self.topic = topic


async def authorize_topics(
    authorize: Authorize,
    connection: Any,
    topics: Sequence[str],
    *,
    timeout: float = DEFAULT_AUTHORIZE_TIMEOUT,
) -> float | None:
    """Ask ``authorize`` about every topic; return the earliest expiry (epoch seconds) or None.

    An awaitable answer that takes longer than ``timeout`` seconds counts as a refusal: a check
    that cannot complete never lets anything through. (A synchronous ``authorize`` blocks the
    event loop and cannot be bounded from here.)

    Raises:
        TopicRefused: a topic was refused, its permission already expired, or ``authorize``
            did not answer in time.
    """
    earliest: float | None = None
    for topic in topics:
        answer = authorize(connection, topic)
        if inspect.isawaitable(answer):
            try:
                answer = await runtime.wait_for(answer, timeout)
            except asyncio.TimeoutError:
                _logger.warning(
                    "authorize did not answer within %s s for topic %r: refused", timeout, topic
                )
                raise TopicRefused(
                    topic, f"Authorization for {topic!r} could not be checked"
                ) from None
        if isinstance(answer, Authorization):
            expiry = answer.epoch()
            if expiry is not None and expiry <= time.time():
                raise TopicRefused(topic, f"Authorization for {topic!r} expired")
            if expiry is not None and (earliest is None or expiry < earliest):
                earliest = expiry
        elif not answer:
            raise TopicRefused(topic, f"Not allowed to subscribe to topic {topic!r}")
    return earliest


class Watch:
    """Ends one subscription when its authorization expires or a re-check refuses it.

    Started when the subscription opens, and cancelled when it ends (a stream refused by the
    app's limits or a ``HEAD`` ends at once); it holds the subscription weakly, and lets go of
    the connection when it is cancelled.

    The expiry has a timer of its own, apart from the re-checks: a re-check whose ``authorize``
    hangs cannot postpone it, and is itself bounded by ``timeout`` (no answer in time: the
    subscription ends as revoked).
    """

    __slots__ = (
        "_authorize",
        "_closing",
        "_connection",
        "_every",
        "_expires",
        "_subscription",
        "_task",
        "_timeout",
        "_timer",
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
        timeout: float,
        closing: dict[str, bytes],
    ) -> None:
        self._authorize = authorize
        self._connection = connection
        self._topics = tuple(topics)
        self._expires = expires_at
        self._every = every
        self._timeout = timeout
        self._closing = closing
        self._subscription: weakref.ReferenceType[Subscription] | None = None
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None

    def start(self, subscription: Subscription) -> None:
        """Watch ``subscription``; called on its event loop when it opens. An authorization
        already expired ends it at once: it yields nothing but the closing."""
        self._subscription = weakref.ref(subscription, self._gone)
        if self._expires is not None and time.time() >= self._expires:
            self._end("expired", cut=False)  # before any stream runs: nothing to cut
            return
        if self._expires is not None:
            self._arm()
        if self._every is not None:
            self._task = runtime.spawn(self._recheck(), name="litestar_sse.broadcast.watch")

    def cancel(self) -> None:
        """Stop watching: the subscription is over. Nothing keeps its connection any more."""
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        task, self._task = self._task, None
        if task is not None:
            try:
                current = runtime.current_task()
            except RuntimeError:  # no running loop
                current = None
            if task is not current:
                task.cancel()
        self._connection = None

    def _gone(self, _: object) -> None:
        self.cancel()  # the subscription was dropped without being closed

    def _arm(self) -> None:
        expires = self._expires
        if expires is None or self._subscription is None:
            return
        if self._timer is not None:
            self._timer.cancel()
        delay = min(max(0.0, expires - time.time()), _LONGEST_TIMER)
        self._timer = runtime.call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self._expires is not None and time.time() >= self._expires:
            self._end("expired")
        else:
            self._arm()  # a far expiry, or the wall clock went back

    async def _recheck(self) -> None:
        every = self._every
        assert every is not None
        while True:
            await runtime.sleep(every)
            if self._subscription is None or self._subscription() is None:
                return
            if not await self._still_allowed():
                self._end("revoked")
                return

    async def _still_allowed(self) -> bool:
        try:
            expires = await authorize_topics(
                self._authorize, self._connection, self._topics, timeout=self._timeout
            )
        except PermissionDeniedException:
            return False
        except Exception:
            _logger.exception("Exception raised by authorize; the subscription is ended")
            return False
        if expires is not None and (self._expires is None or expires < self._expires):
            self._expires = expires
            self._arm()
        return True

    def _end(self, reason: str, *, cut: bool = True) -> None:
        subscription = None if self._subscription is None else self._subscription()
        self.cancel()
        if subscription is not None:
            subscription.revoke(reason, self._closing[reason], cut=cut)
