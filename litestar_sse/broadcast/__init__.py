"""Broadcast: topics, replay after reconnect, slow subscribers, Redis for many processes.

:class:`Broadcaster` publishes events to topics and subscribes clients with a
:class:`~litestar_sse.ServerSentEvent` response. Its backend keeps the history:
:class:`MemoryBackend` inside one process (the default), :class:`RedisStreamBackend` (Redis
Streams, ``pip install litestar-sse[redis]``) across processes and machines.
"""

import typing as _typing
import warnings as _warnings

from litestar_sse.broadcast._authorization import Authorization, Authorize
from litestar_sse.broadcast._backends.base import (
    BackendStats,
    BackendUnavailableError,
    BroadcastBackend,
    IdempotencyKeyReusedError,
    NotPublishedError,
    PublishOutcomeUnknownError,
    Retention,
    RetentionPolicy,
    TooManyIdempotencyKeysError,
    current_principal,
    publishing_as,
)
from litestar_sse.broadcast._backends.memory.backend import MemoryBackend
from litestar_sse.broadcast._broadcaster import (
    Broadcaster,
    BroadcastStats,
    OverflowPolicy,
)
from litestar_sse.broadcast._events.values import (
    AuthorizationEnded,
    BacklogEnd,
    BroadcastMessage,
    Gap,
    HistoryItem,
    MessageItem,
)
from litestar_sse.broadcast._hub.subscription import Subscription
from litestar_sse.broadcast._messages import MessageSubscription, Until
from litestar_sse.broadcast._responses import GAP_HEADER, RESUMED_FROM_HEADER, SubscriptionResponse
from litestar_sse.broadcast._topics import MAX_TOPIC_BYTES, InvalidTopicError, TooManyTopicsError

if _typing.TYPE_CHECKING:
    from litestar_sse.broadcast._backends.redis.backend import RedisStreamBackend

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
    "Retention",
    "RetentionPolicy",
    "Subscription",
    "SubscriptionResponse",
    "TooManyIdempotencyKeysError",
    "TooManyTopicsError",
    "Until",
    "current_principal",
    "publishing_as",
)


# The values a backend exchanges with the broadcaster, public before 0.2: the backend contract
# is internal until a second implementation needs it (docs/changes.rst).
_MOVED: dict[str, str] = {
    "Snapshot": "litestar_sse.broadcast._backends.base",
    "Replay": "litestar_sse.broadcast._backends.replay",
    "ReplayPage": "litestar_sse.broadcast._backends.replay",
}


def __getattr__(name: str) -> object:
    # redis is an optional dependency: imported only when the Redis backend is asked for.
    if name == "RedisStreamBackend":
        try:
            from litestar_sse.broadcast._backends.redis.backend import RedisStreamBackend
        except ImportError as exc:
            raise ImportError(
                "RedisStreamBackend needs redis-py: pip install 'litestar-sse[redis]'"
            ) from exc
        return RedisStreamBackend
    home = _MOVED.get(name)
    if home is not None:
        import importlib

        _warnings.warn(
            f"litestar_sse.broadcast.{name} is internal now ({home}): the backend contract is "
            "not public until a second implementation needs it (see the 'What changed' page)",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(home), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    # The public names (not RedisStreamBackend until imported: without redis-py, getting it
    # raises ImportError, which would break help() and inspect.getmembers() on the package).
    names = set(__all__)
    if "RedisStreamBackend" not in globals():
        names.discard("RedisStreamBackend")
    return sorted(names)
