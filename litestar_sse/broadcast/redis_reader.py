"""``StreamReader``: the one task per process that reads Redis and feeds the local fan-out.

It reads every topic stream that has local subscribers with a single ``XREAD``, inside a
``MULTI`` with the clock, so each read is a consistent snapshot across streams: its entries
are sorted by id and handed out in that order, and the clock says up to where everything has
been seen. Between reads it waits in one blocking ``XREAD``, whose answer it only takes as a
signal (a blocked ``XREAD`` may be answered with one stream only, not a snapshot).

A topic that gets its first local subscriber is taken on between two reads, from the clock of
the read before, and the subscriber reads its own snapshot only after that; events it needs
are therefore never before the cursor. When the reader is blocked, a write to this process'
wake stream makes it take the topic on at once.

When Redis goes away, the reader retries with backoff and resumes from the last id it read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable, Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Final

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from litestar_sse.broadcast.backend import BackendUnavailableError
from litestar_sse.broadcast.ids import new_epoch, pack_redis_id

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

    from litestar_sse.broadcast.backend import EventSink
    from litestar_sse.broadcast.redis_scripts import RedisKeys

__all__ = ("UNAVAILABLE", "StreamReader", "drop_idle_connections", "redis_command")

logger: Final = logging.getLogger("litestar_sse.broadcast")

UNAVAILABLE: Final = (RedisConnectionError, RedisTimeoutError, OSError)
"""The errors that mean "Redis cannot be reached right now"."""

_first: Final = itemgetter(0)


async def drop_idle_connections(client: Redis) -> None:
    """Close the connections idle in ``client``'s pool, after a command found Redis away.

    redis-py hands out a pooled connection without noticing that Redis closed it (with RESP3
    it does not check at all), so every connection left idle across a Redis restart would
    fail the first command sent on it: a publish or a subscription refused although Redis
    is back. Closed now, each reconnects when it is next used. Best effort.
    """
    with contextlib.suppress(Exception):
        await client.connection_pool.disconnect(inuse_connections=False)


@contextlib.asynccontextmanager
async def redis_command(
    client: Redis,
    slots: contextlib.AbstractAsyncContextManager[Any],
    detail: str = "Redis is unavailable",
) -> AsyncIterator[None]:
    """Around a command of a publisher or subscriber: hold a pool slot, and if Redis cannot
    be reached, close the idle connections and raise :class:`BackendUnavailableError`."""
    try:
        async with slots:
            yield
    except UNAVAILABLE as exc:
        await drop_idle_connections(client)
        raise BackendUnavailableError(detail=detail) from exc


_Entry = tuple[int, str, bytes, dict[bytes, bytes]]


class StreamReader:
    """Reads the streams of the topics with local subscribers and delivers their events.

    Args:
        client: The Redis client.
        sink: Where events go (the broadcaster's fan-out).
        keys: The key names.
        bump_epoch: The script that starts a new epoch.
        block_ms: Milliseconds of each blocking wait.
        read_count: Most entries per stream and per read.
        slots: Entered around the commands subscribers send (waking the reader), which share
            the pool with publishers; the reader's own commands do not wait for it.
    """

    def __init__(
        self,
        client: Redis,
        sink: EventSink,
        keys: RedisKeys,
        bump_epoch: AsyncScript,
        *,
        block_ms: int,
        read_count: int,
        slots: contextlib.AbstractAsyncContextManager[Any],
    ) -> None:
        self._client = client
        self._sink = sink
        self._keys = keys
        self._bump_epoch = bump_epoch
        self._block_ms = block_ms
        self._read_count = read_count
        self._slots = slots
        self._wake_key = keys.wake(new_epoch() + new_epoch())
        self._wake_key_bytes = self._wake_key.encode()
        self._wake_cursor = b"0-0"
        self._epoch: bytes | None = None
        self._clock_id: bytes | None = None
        self._seen = 0
        """Position of the newest entry handed out."""
        self._cursors: dict[str, bytes] = {}
        self._topic_of_key: dict[bytes, str] = {}
        self._pending: dict[str, bytes] = {}
        """Topics to take on at the next read, with their stream's key."""
        self._install_waiters: list[asyncio.Future[None]] = []
        self._blocking = False
        self._woken = False
        self._healthy = False
        self._down = False
        self._stopping = False
        self._retry_now = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the reader task."""
        self._task = asyncio.get_running_loop().create_task(
            self._read_forever(), name="litestar_sse.broadcast.redis-reader"
        )

    async def stop(self) -> None:
        """Stop the reader task and remove the wake stream."""
        task, self._task = self._task, None
        if task is not None:
            self._stopping = True
            # Cancel until it sticks: on Python < 3.12 asyncio.wait_for (inside redis-py) may
            # swallow a cancellation that arrives as the awaited operation completes.
            while not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=0.1)
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._fail_waiters(BackendUnavailableError(detail="The broadcaster is closed"))
        with contextlib.suppress(Exception):  # best effort: the key expires by itself
            await self._client.delete(self._wake_key)

    # -- topics ------------------------------------------------------------------------------

    async def watch(self, topics: Sequence[str], timeout: float) -> None:
        """Take on the topics not read yet, and return once they are."""
        # The keys are encoded here, in the subscriber's task: a name Redis cannot take fails
        # this subscription alone, never the reader that serves every other one.
        missing = {
            topic: self._keys.topic(topic).encode()
            for topic in topics
            if topic not in self._cursors
        }
        if not missing:
            return
        if self._task is None:
            raise BackendUnavailableError(detail="The broadcaster is not started")
        if self._down:
            self._retry_now.set()  # backing off: try now, and fail fast if still down
        self._pending.update(missing)
        future = asyncio.get_running_loop().create_future()
        self._install_waiters.append(future)
        if self._blocking and not self._woken:
            self._woken = True
            client = self._client
            async with (
                redis_command(client, self._slots),
                client.pipeline(transaction=False) as pipe,
            ):
                pipe.xadd(self._wake_key, {b"w": b"1"}, maxlen=1, approximate=False)
                pipe.expire(self._wake_key, 3600)
                await pipe.execute()
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout)
        except asyncio.TimeoutError as exc:
            raise BackendUnavailableError(detail="The Redis reader did not respond") from exc

    def unwatch(self, topic: str) -> None:
        """Stop reading ``topic``."""
        self._cursors.pop(topic, None)
        self._pending.pop(topic, None)
        self._topic_of_key.pop(self._keys.topic(topic).encode(), None)

    # -- the loop ----------------------------------------------------------------------------

    async def _read_forever(self) -> None:
        delay = 0.05
        while not self._stopping:
            try:
                await self._read()
            except asyncio.CancelledError:
                raise
            except UNAVAILABLE as exc:
                if self._healthy:
                    logger.warning("Redis unavailable (%s); the broadcast reader retries", exc)
                    await drop_idle_connections(self._client)
            except Exception:
                logger.exception("The broadcast reader failed; it retries")
            if self._healthy:
                delay = 0.05
            self._healthy = False
            self._down = True
            self._fail_waiters(BackendUnavailableError(detail="Redis is unavailable"))
            self._retry_now.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._retry_now.wait(), delay)
            delay = min(delay * 2, 2.0)

    async def _read(self) -> None:
        client = self._client
        while not self._stopping:
            async with client.pipeline(transaction=True) as pipe:
                pipe.hmget(self._keys.meta, "epoch", "ms", "n")
                pipe.xread(self._streams(), count=self._read_count)
                meta, reply = await pipe.execute()
            if self._down:
                logger.info("Redis available again; the broadcast reader resumes")
            self._healthy, self._down = True, False
            if await self._history_lost(meta):
                continue
            more = self._dispatch(reply)
            self._install_pending()
            if more:
                continue
            self._blocking = True
            try:
                if self._pending:
                    continue
                await client.xread(self._streams(), count=1, block=self._block_ms)
            finally:
                self._blocking = self._woken = False

    def _streams(self) -> dict[Any, Any]:
        streams: dict[Any, Any] = {self._wake_key: self._wake_cursor}
        for topic, cursor in self._cursors.items():
            streams[self._keys.topic(topic)] = cursor
        return streams

    async def _history_lost(self, meta: list[bytes | None]) -> bool:
        epoch, ms, n = meta
        clock_id = (ms or b"0") + b"-" + (n or b"0")
        known = self._epoch
        if known is not None and (epoch != known or pack_redis_id(clock_id) < self._seen):
            # Wiped (epoch gone or replaced), or restored from a copy older than what was
            # read (clock behind): this history is over.
            ended = known if epoch == known else b""
            new = await self._bump_epoch(keys=[self._keys.meta], args=[ended, new_epoch()])
            self._restart_epoch(new, clock_id)
            return True
        if epoch is not None:
            self._epoch = epoch
        self._clock_id = clock_id
        return False

    def _restart_epoch(self, epoch: bytes, clock_id: bytes) -> None:
        logger.warning(
            "Broadcast history in Redis was lost (epoch %s -> %s); open streams end with a gap",
            (self._epoch or b"").decode(),
            epoch.decode(),
        )
        self._epoch = epoch
        self._clock_id = clock_id
        self._seen = 0
        resume = f"{epoch.decode()}-{clock_id.decode()}"
        self._sink.reset(self._sink.format.gap("epoch", event_id=resume))
        self._cursors.clear()
        self._topic_of_key.clear()

    def _dispatch(self, reply: Any) -> bool:
        """Hand out the entries of one read in id order; True if a stream had more."""
        entries: list[_Entry] = []
        full_until: int | None = None
        streams_with_data = 0
        for key, items in _stream_items(reply):
            if not items:
                continue
            topic = self._topic_of_key.get(key)
            if topic is None or topic not in self._cursors:
                if key == self._wake_key_bytes:
                    self._wake_cursor = items[-1][0]
                continue
            streams_with_data += 1
            if len(items) >= self._read_count:
                # This stream may hold more: nothing newer than its last entry can go out
                # from the other streams until it has been read further.
                last = pack_redis_id(items[-1][0])
                full_until = last if full_until is None else min(full_until, last)
            for stream_id, fields in items:
                entries.append((pack_redis_id(stream_id), topic, stream_id, fields))
        if not entries:
            return False
        if streams_with_data > 1:
            entries.sort(key=_first)
            if full_until is not None:
                entries = [entry for entry in entries if entry[0] <= full_until]
        assert self._epoch is not None
        prefix = self._epoch + b"-"
        event = self._sink.format.event
        deliver = self._sink.deliver
        cursors = self._cursors
        for position, topic, stream_id, fields in entries:
            cursors[topic] = stream_id
            chunk = event(prefix + stream_id, fields.get(b"e"), fields.get(b"d", b""))
            deliver(topic, position, chunk)
        self._seen = entries[-1][0]
        return full_until is not None

    def _install_pending(self) -> None:
        # New topics start at the clock of the read that just completed: everything up to it
        # has been handed out for the other topics, and each waiting subscriber reads its own
        # snapshot only after this, so nothing it needs is before the cursor.
        if self._clock_id is None or not (self._pending or self._install_waiters):
            return
        for topic, key in self._pending.items():
            if topic not in self._cursors:
                self._cursors[topic] = self._clock_id
                self._topic_of_key[key] = topic
        self._pending.clear()
        waiters, self._install_waiters = self._install_waiters, []
        for future in waiters:
            if not future.done():
                future.set_result(None)

    def _fail_waiters(self, error: BaseException) -> None:
        waiters, self._install_waiters = self._install_waiters, []
        self._pending.clear()
        for future in waiters:
            if not future.done():
                future.set_exception(error)
                future.exception()  # retrieved: the subscriber raises it


def _stream_items(reply: Any) -> Iterable[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]]:
    """``(key, entries)`` pairs of an XREAD reply: RESP2 (a list of pairs) or RESP3 (a dict
    whose values wrap the entries in one more list)."""
    if not reply:
        return ()
    if isinstance(reply, dict):
        return [
            (key, value[0] if value and isinstance(value[0], list) else value)
            for key, value in reply.items()
        ]
    return [(key, items) for key, items in reply]
