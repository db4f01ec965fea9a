"""The response a subscription streams in, and the headers that say where it started."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Final

from litestar_sse.asgi import ASGIStreamingResponse
from litestar_sse.response import ServerSentEvent

if TYPE_CHECKING:
    from litestar.response.base import ASGIResponse

    from litestar_sse.broadcast.authorization import Watch
    from litestar_sse.broadcast.fanout import Subscription

__all__ = ("GAP_HEADER", "RESUMED_FROM_HEADER", "SubscriptionResponse")

RESUMED_FROM_HEADER: Final = "SSE-Resumed-From"
"""Response header: the id after which the stream's events start."""

GAP_HEADER: Final = "SSE-Gap"
"""Response header, present when the client missed events it cannot get back: the reason."""


class SubscriptionResponse(ServerSentEvent):
    """The :class:`~litestar_sse.ServerSentEvent` that :meth:`Broadcaster.subscribe` returns.

    Streams a :class:`Subscription`. Under the ``disconnect`` policy, a subscriber that falls
    too far behind while stuck in a send has its stream stopped at once (like a send timeout),
    so the connection is freed and the client reconnects with ``Last-Event-ID``.
    """

    def __init__(
        self, subscription: Subscription, *, watch: Watch | None = None, **kwargs: Any
    ) -> None:
        super().__init__(subscription, **kwargs)
        self.subscription = subscription
        self.watch = watch

    def to_asgi_response(self, *args: Any, **kwargs: Any) -> ASGIResponse:
        """Build the ASGI response; let the subscription stop it when it is too slow, and
        watch its authorization once it starts."""
        response = super().to_asgi_response(*args, **kwargs)
        if isinstance(response, ASGIStreamingResponse):
            self.subscription.on_overflow = functools.partial(_stop_slow_stream, response)
            if self.watch is not None:
                # Watched from when the stream starts (ended when its authorization is): a
                # stream refused (503, HEAD) or stopped before it starts never has a watch.
                self.subscription.on_start = functools.partial(self.watch.start, response)
                self.subscription.on_close = self.watch.cancel
        return response


def _stop_slow_stream(response: ASGIStreamingResponse) -> None:
    response.stop("overflow")
