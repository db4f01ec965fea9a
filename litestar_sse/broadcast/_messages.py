"""``MessageSubscription``: a subscription that yields values instead of bytes.

It replays the history after the subscriber's id as :class:`BroadcastMessage` values, read
page by page, marks the end of that backlog with :class:`BacklogEnd`, then yields live events
as values too, and can end itself after the event its ``until`` predicate picks.

Underneath is an ordinary :class:`~litestar_sse.broadcast.types.Subscription` opened *without* a
resume: it is registered first and starts live after the newest event at that moment (the
*head*); the backlog is read from the backend up to that same head. The two meet at the head,
so nothing is lost or delivered twice, and live events published while the backlog is read
wait in the subscription (up to ``max_queue``, as for any subscriber). Live events come as the
values the hub made of them when they arrived (:meth:`Subscription.next_values`): nothing is
parsed back from the bytes a backend encoded.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from litestar_sse.broadcast._events.values import (
    AuthorizationEnded,
    BacklogEnd,
    BroadcastMessage,
    HistoryItem,
    MessageItem,
)

if TYPE_CHECKING:
    from litestar_sse.broadcast._hub.subscription import Subscription

__all__ = ("MessageSubscription", "Until")

Until = Callable[[BroadcastMessage], bool]
"""``until(message) -> bool``: the subscription ends right after the message it is true of."""


class MessageSubscription:
    """A subscription that yields :class:`BroadcastMessage`, :class:`Gap` and one
    :class:`BacklogEnd`; made by :meth:`Broadcaster.subscribe_messages`.

    First the events after the subscriber's id (its backlog, read from history page by page;
    a :class:`Gap` where events cannot be replayed), then one :class:`BacklogEnd`, then live
    events as they are published (a :class:`Gap` with reason ``"overflow"`` when a slow
    reader skipped some under the ``drop_oldest`` policy, or ``"epoch"`` when the backend
    lost its history, after which the iteration ends).

    The iteration ends when ``until`` picks a message (right after it), when its
    authorization ends (after an :class:`AuthorizationEnded`, with nothing else of what was
    waiting: an expiry or a revocation ends the backlog too), when the broadcaster closes,
    when the backend lost its history, or when the reader was too slow under the
    ``disconnect`` policy. :meth:`close` (or ``aclose``, or leaving ``async with``) ends it
    early.

    Attributes:
        topics: The topics subscribed to.
        resumed_from: The id after which live events start (the newest id when it
            subscribed).
        subscription: The underlying :class:`Subscription` (opened to read values).
    """

    def __init__(
        self,
        subscription: Subscription,
        backlog: AsyncIterator[HistoryItem] | None,
        until: Until | None = None,
    ) -> None:
        self.subscription = subscription
        self.topics = subscription.topics
        self.resumed_from = subscription.resumed_from
        self._backlog = backlog
        self._until = until
        self._ready: deque[MessageItem] = deque()
        self._finished = False
        self._marked = False

    def __aiter__(self) -> MessageSubscription:
        return self

    async def __anext__(self) -> MessageItem:
        while True:
            revoked = self.subscription.revoked
            if revoked is not None and not self._finished:
                self.close()
                return AuthorizationEnded(revoked)
            if self._ready:
                return self._ready.popleft()
            if self._finished:
                raise StopAsyncIteration
            if not self._marked:
                backlog = self._backlog
                try:
                    if backlog is not None:
                        self._offer(await backlog.__anext__())
                        continue
                except StopAsyncIteration:
                    pass
                except BaseException:
                    await self.aclose()
                    raise
                self._backlog = None
                self._marked = True
                return BacklogEnd(self.resumed_from)
            try:
                taken = await self.subscription.next_values()
            except StopAsyncIteration:
                if self.subscription.revoked is not None:
                    continue  # ended by its authorization: say so
                await self.aclose()
                raise
            if self.subscription.revoked is not None:
                continue  # the closing event: said as AuthorizationEnded
            for item in taken:
                self._offer(item)
                if self._finished:
                    break

    def _offer(self, item: MessageItem) -> None:
        self._ready.append(item)
        until = self._until
        if until is not None and isinstance(item, BroadcastMessage) and until(item):
            self._finished = True
            self._backlog = None  # what is left of the history is not read
            self.subscription.close()

    # -- ending ------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once nothing more will be yielded than what was already taken."""
        return self._finished and not self._ready

    def close(self) -> None:
        """Unsubscribe now; anything not yet taken is discarded (the backlog's pages too)."""
        self._finished = True
        self._ready.clear()
        self.subscription.close()
        self._backlog = None  # an unfinished read of history is closed by the event loop

    async def aclose(self) -> None:
        """Unsubscribe (as :meth:`close`), and close an unfinished read of history now."""
        backlog = self._backlog
        self.close()
        aclose = getattr(backlog, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(RuntimeError):  # being read by another task
                await aclose()

    async def __aenter__(self) -> MessageSubscription:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.aclose()
