"""``RedisStreamBackend``: history in Redis Streams, shared by many processes and machines.

Publishing runs one Lua script: it takes the next id from a clock shared by all topics, adds
the event to the topic's stream and trims the stream (by count and by age). Subscribing runs
another: it reads the epoch, the newest id and the events a resuming client missed, at once.

Each process runs ONE reader task. It reads every topic stream that has local subscribers
with a single ``XREAD`` (in a ``MULTI`` with the clock, so each read is a consistent snapshot
across streams), sorts the entries by id and hands them to the local fan-out; between reads it
waits with one blocking ``XREAD``. Subscribers never talk to Redis for live events, and the
process holds one blocked connection whatever the number of subscribers.

When Redis goes away the reader retries with backoff and resumes from the last id it read, so
nothing within the retention is lost and nothing is delivered twice. Publishing fails loudly
meanwhile (:class:`BackendUnavailableError`). If Redis comes back without the data (no
persistence, ``FLUSHALL``) or with a clock behind what was read (lost writes), a new epoch
starts: every local stream ends with a gap event whose id resumes in the new epoch.

Requires Redis >= 6.2 (exclusive ranges, ``XTRIM MINID``). Keys are listed in
:mod:`litestar_sse.broadcast.redis_scripts`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Iterable, Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Final

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from litestar_sse.broadcast.backend import (
    BackendUnavailableError,
    BroadcastBackend,
    Retention,
    RetentionPolicy,
    Snapshot,
    resolve_retention,
)
from litestar_sse.broadcast.ids import (
    format_redis_position,
    new_epoch,
    pack_redis_id,
    parse_redis_position,
    split_event_id,
)
from litestar_sse.broadcast.redis_scripts import BUMP_EPOCH, PUBLISH, SNAPSHOT

if TYPE_CHECKING:
    from redis.commands.core import AsyncScript

__all__ = ("RedisStreamBackend",)

logger: Final = logging.getLogger("litestar_sse.broadcast")

_UNAVAILABLE: Final = (RedisConnectionError, RedisTimeoutError, OSError)
_first: Final = itemgetter(0)
_Entry = tuple[int, str, bytes, dict[bytes, bytes]]


class RedisStreamBackend(BroadcastBackend):
    """Events and history in Redis Streams, one stream per topic.

    Args:
        redis: A ``redis.asyncio.Redis`` client (created with ``decode_responses=False``, the
            default) or a URL such as ``"redis://localhost:6379/0"``. A client passed in is
            not closed by :meth:`close`; one made from a URL is.
        prefix: Prefix of every key. All processes sharing topics must use the same one.
        retention: History kept per topic (by count and by age), or a function giving each
            topic its own :class:`Retention`.
        block_timeout: Seconds the reader's blocking read waits before it checks in again
            (at most half the client's ``socket_timeout``).
        read_count: Most entries read per stream and per read.
        watch_timeout: Seconds a subscription waits for the reader to take a new topic on
            before giving up with :class:`BackendUnavailableError`.
    """

    def __init__(
        self,
        redis: Redis | str,
        *,
        prefix: str = "litestar_sse:",
        retention: RetentionPolicy = Retention(),  # noqa: B008 - immutable
        block_timeout: float = 2.0,
        read_count: int = 1000,
        watch_timeout: float = 10.0,
    ) -> None:
        if isinstance(redis, str):
            self._url: str | None = redis
            self._client: Redis | None = None
        else:
            if redis.connection_pool.connection_kwargs.get("decode_responses"):
                raise ValueError("RedisStreamBackend needs a client with decode_responses=False")
            self._url = None
            self._client = redis
        if read_count < 1:
            raise ValueError(f"read_count must be >= 1, got {read_count!r}")
        self.prefix = prefix
        self._retention = retention
        self._retention_of: dict[str, tuple[int, int]] = {}
        self._block_timeout = block_timeout
        self._block_ms = max(1, round(block_timeout * 1000))
        self._read_count = read_count
        self._watch_timeout = watch_timeout
        self._meta_key = prefix + "meta"
        self._trimmed_key = prefix + "trimmed"
        self._topic_prefix = prefix + "topic:"
        self._wake_key = ""
        self._wake_key_bytes = b""
        # Reader state: touched only by the reader task, except where noted.
        self._epoch: bytes | None = None
        self._clock_id: bytes | None = None
        self._seen = 0
        self._cursors: dict[str, bytes] = {}
        self._topic_of_key: dict[bytes, str] = {}
        self._wake_cursor = b"0-0"
        self._pending: set[str] = set()
        self._install_waiters: list[asyncio.Future[None]] = []
        self._blocking = False
        self._woken = False
        self._healthy = False
        self._down = False
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._scripts: dict[str, AsyncScript] = {}

    @property
    def redis(self) -> Redis:
        """The client in use (after :meth:`start`)."""
        if self._client is None:
            raise RuntimeError("RedisStreamBackend is not started")
        return self._client

    def _topic_key(self, topic: str) -> str:
        return self._topic_prefix + topic

    def _limits(self, topic: str) -> tuple[int, int]:
        limits = self._retention_of.get(topic)
        if limits is None:
            retention = resolve_retention(self._retention, topic)
            max_events = -1 if retention.max_events is None else retention.max_events
            max_age = 0 if retention.max_age is None else max(1, round(retention.max_age * 1000))
            limits = self._retention_of[topic] = (max_events, max_age)
        return limits

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Create the client (from a URL) and start the reader task."""
        if self._task is not None:
            return
        if self._client is None:
            assert self._url is not None
            self._client = Redis.from_url(self._url)
        client = self._client
        socket_timeout = _socket_timeout(client)
        if socket_timeout is not None:
            # A blocking read must return before the client gives up on the socket.
            self._block_ms = max(1, round(min(self._block_timeout, socket_timeout / 2) * 1000))
        self._scripts = {
            "publish": client.register_script(PUBLISH),
            "snapshot": client.register_script(SNAPSHOT),
            "bump": client.register_script(BUMP_EPOCH),
        }
        self._stopping = False
        self._wake_key = f"{self.prefix}wake:{new_epoch()}{new_epoch()}"
        self._wake_key_bytes = self._wake_key.encode()
        self._task = asyncio.get_running_loop().create_task(
            self._read_forever(), name="litestar_sse.broadcast.redis-reader"
        )

    async def close(self) -> None:
        """Stop the reader, remove this process' wake key, close a client made from a URL."""
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
        client = self._client
        if client is None:
            return
        try:
            if self._wake_key:
                await client.delete(self._wake_key)
        except Exception:
            pass  # best effort: the key expires by itself
        if self._url is not None:
            await client.aclose()
            self._client = None

    # -- publishing --------------------------------------------------------------------------

    async def publish(self, topic: str, event: bytes | None, data: bytes) -> str:
        """Add the event to the topic's stream; raises :class:`BackendUnavailableError`."""
        max_events, max_age = self._limits(topic)
        args: list[Any] = [new_epoch(), max_events, max_age, topic, b"d", data]
        if event is not None:
            args += (b"e", event)
        keys = [self._meta_key, self._trimmed_key, self._topic_key(topic)]
        try:
            epoch, stream_id = await self._scripts["publish"](keys=keys, args=args)
        except _UNAVAILABLE as exc:
            raise BackendUnavailableError(detail="Redis is unavailable: not published") from exc
        return f"{epoch.decode()}-{stream_id.decode()}"

    # -- subscribing -------------------------------------------------------------------------

    async def watch(self, topics: Sequence[str]) -> None:
        """Have the reader take on the topics it does not read yet, and wait until it has."""
        missing = [topic for topic in topics if topic not in self._cursors]
        if not missing:
            return
        if self._down or self._task is None:
            raise BackendUnavailableError(detail="Redis is unavailable")
        self._pending.update(missing)
        future = asyncio.get_running_loop().create_future()
        self._install_waiters.append(future)
        if self._blocking and not self._woken:
            self._woken = True
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    pipe.xadd(self._wake_key, {b"w": b"1"}, maxlen=1, approximate=False)
                    pipe.expire(self._wake_key, 3600)
                    await pipe.execute()
            except _UNAVAILABLE as exc:
                raise BackendUnavailableError(detail="Redis is unavailable") from exc
        try:
            await asyncio.wait_for(asyncio.shield(future), self._watch_timeout)
        except asyncio.TimeoutError as exc:
            raise BackendUnavailableError(detail="The Redis reader did not respond") from exc

    def unwatch(self, topic: str) -> None:
        """Stop reading ``topic``: its last local subscriber left."""
        self._cursors.pop(topic, None)
        self._pending.discard(topic)
        self._topic_of_key.pop(self._topic_key(topic).encode(), None)

    async def snapshot(self, topics: Sequence[str], last_event_id: str | None) -> Snapshot:
        """Read the epoch, the newest id and the missed events in one script."""
        last_epoch, last_id, invalid = "", "0-0", False
        if last_event_id is not None:
            parts = split_event_id(last_event_id)
            position = None if parts is None else parse_redis_position(parts[1])
            if parts is None or position is None:
                invalid = True
            else:
                last_epoch, last_id = parts[0], format_redis_position(position)
        keys = [self._meta_key, self._trimmed_key]
        args: list[Any] = [new_epoch(), last_epoch, last_id]
        for topic in topics:
            keys.append(self._topic_key(topic))
            args += (topic, self._limits(topic)[1])
        try:
            reply = await self._scripts["snapshot"](keys=keys, args=args)
        except _UNAVAILABLE as exc:
            raise BackendUnavailableError(detail="Redis is unavailable") from exc
        epoch, head, status = reply[0].decode(), reply[1], reply[2]
        head_id = f"{epoch}-{head.decode()}"
        live_after = pack_redis_id(head)
        if last_event_id is None:
            return Snapshot(resumed_from=head_id, live_after=live_after)
        if invalid or status == b"future":
            return self._gap(head_id, "invalid", topics, live_after)
        if status == b"epoch":
            return self._gap(head_id, "epoch", topics, live_after)
        gaps = tuple(topics[index - 1] for index in reply[3])
        history = self._history(epoch.encode(), topics, reply[4])
        if gaps:
            return Snapshot(
                resumed_from=head_id,
                history=history,
                gap="retention",
                gap_topics=gaps,
                live_after=live_after,
            )
        return Snapshot(resumed_from=last_event_id, history=history, live_after=live_after)

    @staticmethod
    def _gap(head_id: str, reason: str, topics: Sequence[str], live_after: int) -> Snapshot:
        return Snapshot(
            resumed_from=head_id, gap=reason, gap_topics=tuple(topics), live_after=live_after
        )

    def _history(self, epoch: bytes, topics: Sequence[str], ranges: list[Any]) -> list[bytes]:
        entries: list[tuple[int, bytes, dict[bytes, bytes]]] = []
        for index, items in zip(ranges[::2], ranges[1::2], strict=True):
            del index  # every range is read; the index only matters for gaps
            for stream_id, flat in items:
                fields = dict(zip(flat[::2], flat[1::2], strict=True))
                entries.append((pack_redis_id(stream_id), stream_id, fields))
        entries.sort(key=_first)
        event = self.sink.format.event
        prefix = epoch + b"-"
        return [
            event(prefix + stream_id, fields.get(b"e"), fields.get(b"d", b""))
            for _, stream_id, fields in entries
        ]

    # -- the reader --------------------------------------------------------------------------

    async def _read_forever(self) -> None:
        delay = 0.05
        while not self._stopping:
            try:
                await self._read()
            except asyncio.CancelledError:
                raise
            except _UNAVAILABLE as exc:
                if self._healthy:
                    logger.warning("Redis unavailable (%s); the broadcast reader retries", exc)
            except Exception:
                logger.exception("The broadcast reader failed; it retries")
            if self._healthy:
                delay = 0.05
            self._healthy = False
            self._down = True
            self._fail_waiters(BackendUnavailableError(detail="Redis is unavailable"))
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def _read(self) -> None:
        client = self.redis
        while not self._stopping:
            streams = self._streams()
            async with client.pipeline(transaction=True) as pipe:
                pipe.hmget(self._meta_key, "epoch", "ms", "n")
                pipe.xread(streams, count=self._read_count)
                meta, reply = await pipe.execute()
            if self._down:
                logger.info("Redis available again; the broadcast reader resumes")
            self._healthy, self._down = True, False
            if await self._epoch_changed(meta):
                continue
            more = self._dispatch(reply)
            self._install_pending()
            if more:
                continue
            # Wait for news, then read again in a MULTI: a blocked XREAD may be answered with
            # one stream only, which is not a consistent snapshot across streams.
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
            streams[self._topic_key(topic)] = cursor
        return streams

    async def _epoch_changed(self, meta: list[bytes | None]) -> bool:
        epoch, ms, n = meta
        clock_id = (ms or b"0") + b"-" + (n or b"0")
        clock = pack_redis_id(clock_id)
        known = self._epoch
        if known is not None and (epoch != known or clock < self._seen):
            # Wiped (epoch gone or replaced) or restored from an older copy (clock behind
            # what was read): this history is over.
            new = await self._scripts["bump"](
                keys=[self._meta_key], args=[known if epoch == known else b"", new_epoch()]
            )
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
        self.sink.reset(self.sink.format.gap("epoch", event_id=resume))
        self._cursors.clear()

    def _dispatch(self, reply: Any) -> bool:
        """Hand the entries of one read to the fan-out in id order; True if a stream was full."""
        entries: list[_Entry] = []
        full_until: int | None = None
        streams_with_data = 0
        count = self._read_count
        for key, items in _stream_items(reply):
            if not items:
                continue
            topic = self._topic_of_key.get(key)
            if topic is None or topic not in self._cursors:
                if key == self._wake_key_bytes:
                    self._wake_cursor = items[-1][0]
                continue
            streams_with_data += 1
            if len(items) >= count:
                # This stream may hold more: nothing newer than its last entry is safe to send
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
        event = self.sink.format.event
        deliver = self.sink.deliver
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
        for topic in self._pending:
            if topic not in self._cursors:
                self._cursors[topic] = self._clock_id
                self._topic_of_key[self._topic_key(topic).encode()] = topic
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


def _socket_timeout(client: Redis) -> float | None:
    """The read timeout of the client's connections (redis-py's default when not given)."""
    kwargs = client.connection_pool.connection_kwargs
    if "socket_timeout" in kwargs:
        value = kwargs["socket_timeout"]
    else:
        connection_class = client.connection_pool.connection_class
        parameter = inspect.signature(connection_class).parameters.get("socket_timeout")
        value = None if parameter is None else parameter.default
    return float(value) if isinstance(value, (int, float)) and value > 0 else None
