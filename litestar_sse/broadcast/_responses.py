"""The response a subscription streams in, and the headers that say where it started."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Final

from litestar_sse._response import ServerSentEvent
from litestar_sse.asgi import ASGIStreamingResponse

if TYPE_CHECKING:
    from litestar.response.base import ASGIResponse

    from litestar_sse.broadcast._hub.subscription import Subscription

__all__ = ("GAP_HEADER", "RESUMED_FROM_HEADER", "SubscriptionResponse")

RESUMED_FROM_HEADER: Final = "SSE-Resumed-From"
"""Response header: the id after which the stream's events start."""

GAP_HEADER: Final = "SSE-Gap"
"""Response header, present when the client missed events it cannot get back: the reason."""


class SubscriptionResponse(ServerSentEvent):
    """The :class:`~litestar_sse.ServerSentEvent` that :meth:`Broadcaster.subscribe` returns.

    Streams a :class:`Subscription`. Under the ``disconnect`` policy, a subscriber that falls
    too far behind while stuck in a send has its stream stopped at once (like a send timeout),
    so the connection is freed and the client reconnects with ``Last-Event-ID``. When its
    authorization ends (see :meth:`Subscription.revoke`), the stream stops at once with the
    ``unauthorized_event`` last (stop reason ``"unauthorized"``).
    """

    def __init__(self, subscription: Subscription, **kwargs: Any) -> None:
        super().__init__(subscription, **kwargs)
        self.subscription = subscription

    def to_asgi_response(self, *args: Any, **kwargs: Any) -> ASGIResponse:
        """Build the ASGI response; let the subscription stop it when it is too slow or its
        authorization ends."""
        response = super().to_asgi_response(*args, **kwargs)
        if isinstance(response, ASGIStreamingResponse):
            self.subscription.on_overflow = functools.partial(_stop_slow_stream, response)
            self.subscription.on_revoke = functools.partial(_stop_unauthorized, response)
        return response


def _stop_slow_stream(response: ASGIStreamingResponse) -> None:
    response.stop("overflow")


def _stop_unauthorized(response: ASGIStreamingResponse, closing: bytes) -> None:
    response.stop("unauthorized", closing=closing)
