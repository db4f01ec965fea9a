"""The errors a broadcasting app may catch: a refused topic, a publish that did not happen or
may have, an idempotency key reused, the backend out of reach.

Every one of them is raised by :class:`~litestar_sse.broadcast.Broadcaster`'s calls; the
plugin answers the HTTP ones itself (429, 409, 503) when a handler lets them through.
"""

from litestar_sse.broadcast._backends.base import (
    BackendUnavailableError,
    IdempotencyKeyReusedError,
    NotPublishedError,
    PublishOutcomeUnknownError,
    TooManyIdempotencyKeysError,
)
from litestar_sse.broadcast._topics import InvalidTopicError, TooManyTopicsError

__all__ = (
    "BackendUnavailableError",
    "IdempotencyKeyReusedError",
    "InvalidTopicError",
    "NotPublishedError",
    "PublishOutcomeUnknownError",
    "TooManyIdempotencyKeysError",
    "TooManyTopicsError",
)
