"""Broadcast: topics, replay after reconnect, slow subscribers, Redis for many processes.

:class:`Broadcaster` publishes events to topics and subscribes clients with a
:class:`~litestar_sse.ServerSentEvent` response. Its backend keeps the history:
:class:`MemoryBackend` inside one process (the default), :class:`RedisStreamBackend` (Redis
Streams, ``pip install litestar-sse[redis]``) across processes and machines.

The errors its calls raise are in :mod:`litestar_sse.broadcast.errors`; the types they return
and take, for annotations, in :mod:`litestar_sse.broadcast.types`. Every other module here is
internal.
"""

import importlib as _importlib
import typing as _typing
import warnings as _warnings

from litestar_sse.broadcast import errors, types
from litestar_sse.broadcast._authorization import Authorization
from litestar_sse.broadcast._backends.base import Retention, publishing_as
from litestar_sse.broadcast._backends.memory.backend import MemoryBackend
from litestar_sse.broadcast._batch import BatchEvent
from litestar_sse.broadcast._broadcaster import Broadcaster
from litestar_sse.broadcast._events.values import (
    AuthorizationEnded,
    BacklogEnd,
    BroadcastMessage,
    Gap,
)
from litestar_sse.broadcast._responses import GAP_HEADER, RESUMED_FROM_HEADER
from litestar_sse.broadcast._topics import MAX_TOPIC_BYTES

if _typing.TYPE_CHECKING:
    from litestar_sse.broadcast._backends.redis.backend import RedisStreamBackend

__all__ = (
    "GAP_HEADER",
    "MAX_TOPIC_BYTES",
    "RESUMED_FROM_HEADER",
    "Authorization",
    "AuthorizationEnded",
    "BacklogEnd",
    "BatchEvent",
    "BroadcastMessage",
    "Broadcaster",
    "Gap",
    "MemoryBackend",
    "RedisStreamBackend",
    "Retention",
    "errors",
    "publishing_as",
    "types",
)

# Names exported here before 0.2, and where they live now (docs/changes.rst): the errors and
# the types for annotations have a public module each; the rest is internal.
_MOVED: dict[str, str] = {
    **dict.fromkeys(errors.__all__, "litestar_sse.broadcast.errors"),
    **dict.fromkeys(types.__all__, "litestar_sse.broadcast.types"),
    "current_principal": "litestar_sse.broadcast._backends.base",
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
        where = f"internal now ({home})" if "._" in home else f"moved: import it from {home}"
        _warnings.warn(
            f"litestar_sse.broadcast.{name} is {where} (see the 'What changed' page)",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(_importlib.import_module(home), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    # The public names (not RedisStreamBackend until imported: without redis-py, getting it
    # raises ImportError, which would break help() and inspect.getmembers() on the package).
    names = set(__all__)
    if "RedisStreamBackend" not in globals():
        names.discard("RedisStreamBackend")
    return sorted(names)
