"""How the Redis backend sends the commands of publishers and subscribers.

A publish is the one command whose outcome matters when Redis stalls: it runs on a connection
taken from the pool for it, under a deadline of its own (``publish_timeout``), enforced here
whatever the client's ``socket_timeout`` (redis-py before 8 has none: a command waited as long
as Redis was stopped). Whether the script was written to the connection when something went
wrong decides the error: :class:`NotPublishedError` if it never was (certain), else
:class:`PublishOutcomeUnknownError` (Redis may run it, even after it resumes).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, Final, TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

from litestar_sse.broadcast._backends.base import (
    BackendUnavailableError,
    NotPublishedError,
    PublishOutcomeUnknownError,
)

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.connection import AbstractConnection
    from redis.commands.core import AsyncScript

__all__ = (
    "NOT_PUBLISHED",
    "OUTCOME_UNKNOWN",
    "UNAVAILABLE",
    "bulk",
    "drop_idle_connections",
    "redis_command",
    "run_publish",
    "within",
)

_T = TypeVar("_T")

UNAVAILABLE: Final = (RedisConnectionError, RedisTimeoutError, OSError)
"""The errors that mean "Redis cannot be reached right now"."""

NOT_PUBLISHED: Final = "Redis is unavailable: not published"
OUTCOME_UNKNOWN: Final = "Redis did not answer: the event may have been published"

_DROP_TIMEOUT: Final = 1.0
"""Seconds closing the idle connections may take (a stalled Redis never answers)."""


async def drop_idle_connections(client: Redis) -> None:
    """Close the connections idle in ``client``'s pool, after a command found Redis away.

    redis-py hands out a pooled connection without noticing that Redis closed it (with RESP3
    it does not check at all), so every connection left idle across a Redis restart would
    fail the first command sent on it: a publish or a subscription refused although Redis
    is back. And while Redis is stalled, a command written to an idle connection waits in
    its socket, to run when Redis resumes: a publish whose caller was told it failed. Closed
    now, each reconnects when it is next used. Best effort.
    """
    with contextlib.suppress(Exception):
        await asyncio.wait_for(
            client.connection_pool.disconnect(inuse_connections=False), _DROP_TIMEOUT
        )


@contextlib.asynccontextmanager
async def redis_command(
    client: Redis,
    slots: contextlib.AbstractAsyncContextManager[Any],
    detail: str = "Redis is unavailable",
) -> AsyncIterator[None]:
    """Around a command of a subscriber: hold a pool slot, and if Redis cannot be reached,
    close the idle connections and raise :class:`BackendUnavailableError`."""
    try:
        async with slots:
            yield
    except UNAVAILABLE as exc:
        await drop_idle_connections(client)
        raise BackendUnavailableError(detail=detail) from exc


class _Attempt:
    __slots__ = ("sent",)

    def __init__(self) -> None:
        self.sent = False
        """The script was (or may have been) written to a connection."""


async def run_publish(
    client: Redis,
    slots: contextlib.AbstractAsyncContextManager[Any],
    script: AsyncScript,
    body: Sequence[bytes],
    items: int,
    timeout: float,
) -> Any:
    """Run the publish ``script`` once, within ``timeout`` seconds; return its reply.

    ``body``: the rest of the command in RESP, its ``items`` arguments after the script's
    (the number of keys, the keys, the arguments), each a :func:`bulk`.

    Raises:
        NotPublishedError: the script was never written to a connection.
        PublishOutcomeUnknownError: it was, and no answer came.
    """
    attempt = _Attempt()
    try:
        return await _before(timeout, _run(client, slots, script, body, items, attempt))
    except (asyncio.TimeoutError, *UNAVAILABLE) as exc:
        await drop_idle_connections(client)
        if attempt.sent:
            raise PublishOutcomeUnknownError(detail=OUTCOME_UNKNOWN) from exc
        raise NotPublishedError(detail=NOT_PUBLISHED) from exc


async def _before(timeout: float, call: Coroutine[Any, Any, _T]) -> _T:
    """Await ``call`` in this task, cancelling it after ``timeout`` seconds
    (``asyncio.TimeoutError`` then): no task of its own, unlike ``asyncio.wait_for``, which
    costs a task and three turns of the loop per publish."""
    task = asyncio.current_task()
    if task is None or not hasattr(task, "uncancel"):  # Python 3.10
        return await asyncio.wait_for(call, timeout)
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        task.cancel()

    handle = asyncio.get_running_loop().call_later(timeout, expire)
    try:
        result = await call
    except asyncio.CancelledError:
        # ours, unless the task was also cancelled from outside: then that one goes on
        if expired and task.uncancel() == 0:
            raise asyncio.TimeoutError from None
        raise
    finally:
        handle.cancel()
    if expired:  # the call took the cancellation in and still returned: it was answered
        task.uncancel()
    return result


async def _run(
    client: Redis,
    slots: contextlib.AbstractAsyncContextManager[Any],
    script: AsyncScript,
    body: Sequence[bytes],
    items: int,
    attempt: _Attempt,
) -> Any:
    async with slots:
        pool = client.connection_pool
        connection = await _get_connection(pool)
        try:
            await _make_ready(connection)
            attempt.sent = True
            head = b"*%d\r\n$7\r\nEVALSHA\r\n" % (items + 2)
            await connection.send_packed_command([head, bulk(_utf8(script.sha)), *body], False)
            try:
                return await connection.read_response()
            except NoScriptError:  # Redis answered: not run; load it with the call
                head = b"*%d\r\n$4\r\nEVAL\r\n" % (items + 2)
                source = bulk(_utf8(script.script))
                await connection.send_packed_command([head, source, *body], False)
                return await connection.read_response()
        except BaseException as exc:
            if not isinstance(exc, Exception) or isinstance(exc, UNAVAILABLE):
                # Cut off mid-command (deadline, broken socket): a late answer must never be
                # read as another command's.
                await connection.disconnect(nowait=True)
            raise
        finally:
            await pool.release(connection)


def _utf8(value: str | bytes | memoryview) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


def bulk(value: bytes) -> bytes:
    """``value`` as a RESP bulk string: a publish writes its command itself, one formatting
    per argument (redis-py's ``pack_command`` costs several calls per argument, and a
    publish sends a dozen per event)."""
    return b"$%d\r\n%b\r\n" % (len(value), value)


_NEEDS_COMMAND_NAME: dict[type, bool] = {}
"""Per pool class: redis-py before 5.3 requires a command name, later versions deprecate it."""


async def _get_connection(pool: Any) -> AbstractConnection:
    needs_name = _NEEDS_COMMAND_NAME.get(type(pool))
    if needs_name is None:
        parameter = inspect.signature(pool.get_connection).parameters.get("command_name")
        needs_name = parameter is not None and parameter.default is inspect.Parameter.empty
        _NEEDS_COMMAND_NAME[type(pool)] = needs_name
    if needs_name:
        return await pool.get_connection("EVALSHA")  # type: ignore[no-any-return]
    return await pool.get_connection()  # type: ignore[no-any-return]


async def _make_ready(connection: AbstractConnection) -> None:
    """Reconnect a pooled connection that Redis closed while it was idle, before anything is
    written to it (redis-py does not always check: with RESP3 it never does)."""
    reader = getattr(connection, "_reader", None)
    if reader is not None and reader.at_eof():
        await connection.disconnect()
        await connection.connect()  # type: ignore[no-untyped-call]


async def within(client: Redis, timeout: float, call: Awaitable[_T]) -> _T:
    """Await a subscriber's ``call`` for at most ``timeout`` seconds (whatever the client's
    ``socket_timeout``); past that, raise :class:`BackendUnavailableError`."""
    try:
        return await asyncio.wait_for(call, timeout)
    except asyncio.TimeoutError as exc:
        await drop_idle_connections(client)
        raise BackendUnavailableError(detail="Redis did not answer") from exc
