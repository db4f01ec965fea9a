"""What the Redis backend tells operators when Redis goes away and comes back.

One ``WARNING`` line on the ``litestar_sse.broadcast`` logger when the first call of an outage
fails (which backend, which Redis, the cause), whatever the number of calls failing during it,
and one when a call succeeds again (how long it lasted). Redis is named by its address only:
never a password or a user name, which a URL may carry. Clients get a ``503`` naming nothing
of this (see :class:`~litestar_sse.broadcast.errors.BackendUnavailableError`).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ("Outage", "describe_redis")

logger: Final = logging.getLogger("litestar_sse.broadcast")


def describe_redis(client: Redis) -> str:
    """Where ``client`` connects, without its credentials: ``redis://host:port/db`` or
    ``unix:///path?db=n``."""
    kwargs = client.connection_pool.connection_kwargs
    db = kwargs.get("db", 0)
    path = kwargs.get("path")
    if path:
        return f"unix://{path}?db={db}"
    scheme = "rediss" if "ssl_context" in kwargs or kwargs.get("ssl") else "redis"
    return f"{scheme}://{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{db}"


class Outage:
    """Whether Redis is away, as the backend's calls found it, and the log lines saying so.

    Args:
        where: Redis' address (:func:`describe_redis`).
        secrets: Strings never to write in a log line (the client's password and user name),
            in case an error quotes one.
    """

    __slots__ = ("_secrets", "_since", "where")

    def __init__(self, where: str, secrets: tuple[str, ...] = ()) -> None:
        self.where = where
        self._secrets = tuple(secret for secret in secrets if secret)
        self._since: float | None = None

    @property
    def down(self) -> bool:
        """True from a failed call until a call succeeds."""
        return self._since is not None

    def cause(self, error: BaseException) -> str:
        """``error`` in one line, with any secret masked; its cause's when it has one (the
        backend's own errors chain Redis' error)."""
        shown = error.__cause__ if error.__cause__ is not None else error
        text = str(shown) or getattr(error, "detail", "") or "no answer"
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return f"{type(shown).__name__}: {text}"

    def failed(self, error: BaseException) -> None:
        """A call found Redis away: the first of an outage logs a warning."""
        if self._since is not None:
            return
        self._since = time.monotonic()
        logger.warning(
            "RedisStreamBackend: Redis at %s is unavailable (%s); publishes and new "
            "subscriptions answer 503 until it is back",
            self.where,
            self.cause(error),
        )

    def recovered(self) -> None:
        """A call succeeded: the first after an outage logs that it ended."""
        since, self._since = self._since, None
        if since is not None:
            logger.warning(
                "RedisStreamBackend: Redis at %s is available again, after %.1f s",
                self.where,
                time.monotonic() - since,
            )
