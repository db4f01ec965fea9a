"""The types a broadcasting app meets without building them, for annotations: what
:class:`~litestar_sse.broadcast.Broadcaster`'s calls return, the shapes of the callables and
settings it takes, and the statistics it reports.

``BroadcastBackend`` is the type of ``Broadcaster.backend``. The contract a backend
implements is internal (provisional) until a second implementation needs it.
"""

from litestar_sse.broadcast._authorization import Authorize
from litestar_sse.broadcast._backends.base import BackendStats, BroadcastBackend, RetentionPolicy
from litestar_sse.broadcast._broadcaster import OverflowPolicy
from litestar_sse.broadcast._events.values import HistoryItem, MessageItem
from litestar_sse.broadcast._hub.subscription import Subscription
from litestar_sse.broadcast._messages import MessageSubscription, Until
from litestar_sse.broadcast._responses import SubscriptionResponse
from litestar_sse.broadcast._stats import BroadcastStats

__all__ = (
    "Authorize",
    "BackendStats",
    "BroadcastBackend",
    "BroadcastStats",
    "HistoryItem",
    "MessageItem",
    "MessageSubscription",
    "OverflowPolicy",
    "RetentionPolicy",
    "Subscription",
    "SubscriptionResponse",
    "Until",
)
