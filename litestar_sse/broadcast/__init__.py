"""Broadcast: topics, replay after reconnect, slow subscribers, Redis for many processes.

:class:`Broadcaster` publishes events to topics and subscribes clients with a
:class:`~litestar_sse.ServerSentEvent` response. Its backend keeps the history:
:class:`MemoryBackend` inside one process (the default), :class:`RedisStreamBackend` (Redis
Streams, ``pip install litestar-sse[redis]``) across processes and machines.
"""

from typing import TYPE_CHECKING, Any

from litestar_sse.broadcast.authorization import Authorization, Authorize
from litestar_sse.broadcast.backends.base import (
    BackendStats,
    BackendUnavailableError,
    BroadcastBackend,
    IdempotencyKeyReusedError,
    NotPublishedError,
    PublishOutcomeUnknownError,
    Retention,
    RetentionPolicy,
    Snapshot,
    TooManyIdempotencyKeysError,
    current_principal,
    publishing_as,
)
from litestar_sse.broadcast.backends.memory.backend import MemoryBackend
from litestar_sse.broadcast.backends.replay import Replay, ReplayPage
from litestar_sse.broadcast.broadcaster import (
    Broadcaster,
    BroadcastStats,
    OverflowPolicy,
)
from litestar_sse.broadcast.events.values import (
    AuthorizationEnded,
    BacklogEnd,
    BroadcastMessage,
    Gap,
    HistoryItem,
    MessageItem,
)
from litestar_sse.broadcast.hub.subscription import Subscription
from litestar_sse.broadcast.messages import MessageSubscription, Until
from litestar_sse.broadcast.responses import GAP_HEADER, RESUMED_FROM_HEADER, SubscriptionResponse
from litestar_sse.broadcast.topics import MAX_TOPIC_BYTES, InvalidTopicError, TooManyTopicsError

if TYPE_CHECKING:
    from litestar_sse.broadcast.backends.redis.backend import RedisStreamBackend

__all__ = (
    "GAP_HEADER",
    "MAX_TOPIC_BYTES",
    "RESUMED_FROM_HEADER",
    "Authorization",
    "AuthorizationEnded",
    "Authorize",
    "BackendStats",
    "BackendUnavailableError",
    "BacklogEnd",
    "BroadcastBackend",
    "BroadcastMessage",
    "BroadcastStats",
    "Broadcaster",
    "Gap",
    "HistoryItem",
    "IdempotencyKeyReusedError",
    "InvalidTopicError",
    "MemoryBackend",
    "MessageItem",
    "MessageSubscription",
    "NotPublishedError",
    "OverflowPolicy",
    "PublishOutcomeUnknownError",
    "RedisStreamBackend",
    "Replay",
    "ReplayPage",
    "Retention",
    "RetentionPolicy",
    "Snapshot",
    "Subscription",
    "SubscriptionResponse",
    "TooManyIdempotencyKeysError",
    "TooManyTopicsError",
    "Until",
    "current_principal",
    "publishing_as",
)


def __getattr__(name: str) -> Any:
    # redis is an optional dependency: imported only when the Redis backend is asked for.
    if name == "RedisStreamBackend":
        try:
            from litestar_sse.broadcast.backends.redis.backend import RedisStreamBackend
        except ImportError as exc:
            raise ImportError(
                "RedisStreamBackend needs redis-py: pip install 'litestar-sse[redis]'"
            ) from exc
        return RedisStreamBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
