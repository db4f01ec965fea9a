"""``StreamReader``: the one task per process that reads Redis and feeds the local fan-out.

Each round reads the clock and the change log (every publish adds its id and topic to it) in
one ``MULTI``: the log lists every event up to the clock, in order, so it says which of the
topics followed here have new events. Only their streams are read next, up to the last
listed id, and their entries are handed out in id order. A wake therefore costs the same
whatever the number of topics followed, and no command names more than ``read_count`` topic
streams. Between rounds the reader waits in one blocking ``XREAD`` of the log and of its wake
stream, whose answer it only takes as a signal.

When the log cannot tell (the reader fell further behind than the log is long, or a process
of an older version published without writing it), the round reads every followed stream up
to the clock instead, in batches of keys: slower, never wrong.

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
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from litestar_sse.broadcast._backends.base import BackendUnavailableError
from litestar_sse.broadcast._backends.redis.change_log import (
    Entry,
    LogEntry,
    collect_entries,
    in_order_until,
    stream_items,
    topics_in_log,
)
from litestar_sse.broadcast._backends.redis.commands import (
    UNAVAILABLE,
    drop_idle_connections,
    redis_command,
    within,
)
from litestar_sse.broadcast._events.ids import format_redis_position, new_epoch, pack_redis_id

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

    from litestar_sse.broadcast._backends.base import BackendStats, EventSink
    from litestar_sse.broadcast._backends.redis.outage import Outage
    from litestar_sse.broadcast._backends.redis.scripts import RedisKeys

__all__ = ("StreamReader",)

logger: Final = logging.getLogger("litestar_sse.broadcast")

SCAN_BATCH: Final = 500
"""Most topic streams named in one ``XREAD`` when every followed stream must be read."""


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
        stats: Where the reader counts its failed rounds and its recoveries.
        outage: Told of every failed and every successful round (it logs once per outage).
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
        stats: BackendStats,
        outage: Outage,
    ) -> None:
        self._client = client
        self._outage = outage
        self._stats = stats
        self._sink = sink
        self._keys = keys
        self._bump_epoch = bump_epoch
        self._block_ms = block_ms
        self._read_count = read_count
        self._slots = slots
        self._wake_key = keys.wake(new_epoch() + new_epoch())
        self._wake_key_bytes = self._wake_key.encode()
        self._wake_cursor = b"0-0"
        self._log_cursor = b"0-0"
        """Every event of a followed topic up to this id has been handed out."""
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
            self._read_forever(), name="litestar_sse.broadcast._backends.redis.backend-reader"
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
            await within(self._client, timeout, self._wake())
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout)
        except asyncio.TimeoutError as exc:
            raise BackendUnavailableError(detail="The Redis reader did not respond") from exc

    async def _wake(self) -> None:
        client = self._client
        async with redis_command(client, self._slots), client.pipeline(transaction=False) as pipe:
            pipe.xadd(self._wake_key, {b"w": b"1"}, maxlen=1, approximate=False)
            pipe.expire(self._wake_key, 3600)
            await pipe.execute()

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
                self._stats.reader_errors += 1
                self._outage.failed(exc)
                if self._healthy:
                    await drop_idle_connections(self._client)
            except Exception:
                self._stats.reader_errors += 1
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
        keys = self._keys
        while not self._stopping:
            following = bool(self._cursors)
            async with client.pipeline(transaction=True) as pipe:
                pipe.hmget(keys.meta, "epoch", "ms", "n", "lt", "lx")
                pipe.xread(self._signals(), count=self._read_count)
                meta, reply = await pipe.execute()
            if self._down:
                self._stats.reconnects += 1
            self._outage.recovered()
            self._healthy, self._down = True, False
            if await self._history_lost(meta[:3]):
                continue
            log: list[LogEntry] = []
            for key, items in stream_items(reply):
                if key == self._wake_key_bytes:
                    self._wake_cursor = items[-1][0] if items else self._wake_cursor
                elif items:
                    log = items
            more = await self._catch_up(log, meta[3], meta[4]) if following else False
            if not following:
                self._log_cursor = self._clock_id or b"0-0"
            self._install_pending()
            if more:
                continue
            self._blocking = True
            try:
                if self._pending:
                    continue
                await client.xread(self._signals(), count=1, block=self._block_ms)
            finally:
                self._blocking = self._woken = False

    def _signals(self) -> dict[Any, Any]:
        """The streams to wait on: this process' wake stream, and the change log when any
        topic is followed."""
        streams: dict[Any, Any] = {self._wake_key: self._wake_cursor}
        if self._cursors:
            streams[self._keys.log] = self._log_cursor
        return streams

    async def _catch_up(
        self, log: list[LogEntry], log_trimmed: bytes | None, unlogged: bytes | None
    ) -> bool:
        """Hand out the new events of the followed topics; True if there may be more."""
        assert self._clock_id is not None
        clock = pack_redis_id(self._clock_id)
        cursor = pack_redis_id(self._log_cursor)
        full = len(log) >= self._read_count
        newest = pack_redis_id(log[-1][0]) if log else cursor
        if (
            (log_trimmed is not None and pack_redis_id(log_trimmed) > cursor)
            or (unlogged is not None and pack_redis_id(unlogged) > cursor)
            or (not full and newest != clock)
        ):
            # Entries the reader needs left the log, or events are missing from it (published
            # by an older version): read every followed stream instead.
            return await self._scan_all(clock)
        until, until_id = (newest, log[-1][0]) if full else (clock, self._clock_id)
        counts = topics_in_log(log, self._keys.topic_prefix.encode(), self._topic_of_key)
        if counts:
            cursors, topic_of_key = self._cursors, self._topic_of_key
            streams: dict[Any, Any] = {key: cursors[topic_of_key[key]] for key in counts}
            reply = await self._client.xread(streams, count=max(counts.values()))
            entries: list[Entry] = []
            collect_entries(reply, topic_of_key, self._read_count + 1, entries)
            self._deliver(in_order_until(entries, until))
        self._log_cursor = until_id
        return full

    async def _scan_all(self, clock: int) -> bool:
        """Read every followed stream up to ``clock``, in batches; True if there is more."""
        assert self._clock_id is not None
        followed = list(self._cursors.items())
        topic_of_key = self._topic_of_key
        key_of = {topic: key for key, topic in topic_of_key.items()}
        entries: list[Entry] = []
        until = clock
        for start in range(0, len(followed), SCAN_BATCH):
            batch = followed[start : start + SCAN_BATCH]
            streams: dict[Any, Any] = {
                key_of[topic]: cursor for topic, cursor in batch if topic in key_of
            }
            reply = await self._client.xread(streams, count=self._read_count)
            full_until = collect_entries(reply, topic_of_key, self._read_count, entries)
            if full_until is not None:
                until = min(until, full_until)
        self._deliver(in_order_until(entries, until))
        self._log_cursor = self._clock_id if until == clock else _format_id(until)
        return until != clock

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
        self._log_cursor = clock_id
        self._seen = 0
        resume = f"{epoch.decode()}-{clock_id.decode()}"
        self._sink.reset(self._sink.format.gap("epoch", event_id=resume))
        self._cursors.clear()
        self._topic_of_key.clear()

    def _deliver(self, entries: list[Entry]) -> None:
        """Hand out ``entries`` (in position order) to the topics still followed."""
        if not entries:
            return
        assert self._epoch is not None
        prefix = self._epoch + b"-"
        event = self._sink.format.event
        deliver = self._sink.deliver
        cursors = self._cursors
        for position, topic, stream_id, fields in entries:
            if topic not in cursors:
                continue  # unfollowed while the round awaited Redis
            cursors[topic] = stream_id
            event_id, event_type, data = prefix + stream_id, fields.get(b"e"), fields.get(b"d", b"")
            deliver(topic, position, event(event_id, event_type, data), event_id, event_type, data)
        self._seen = max(self._seen, entries[-1][0])

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


def _format_id(position: int) -> bytes:
    return format_redis_position(position).encode()
