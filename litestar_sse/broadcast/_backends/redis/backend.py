"""``RedisStreamBackend``: history in Redis Streams, shared by many processes and machines.

Publishing runs one Lua script: it takes the next id from a clock shared by all topics, adds
the event to the topic's stream and trims the stream (by count and by age). Subscribing runs
another: it reads the epoch, the newest id and the events a resuming client missed, at once.
Live events come from the process' one :class:`~.reader.StreamReader`, whatever the
number of subscribers: subscribers never talk to Redis for live events.

When Redis goes away, publishing and subscribing fail loudly
(:class:`~litestar_sse.broadcast.errors.BackendUnavailableError`, a 503 if unhandled) while open
streams stay open; the reader resumes from the last id it read once Redis is back, so nothing
within the retention is lost and nothing is delivered twice. If Redis comes back without the
data (no persistence, ``FLUSHALL``) or with a clock behind what was read (it lost writes), a
new epoch starts: every open stream ends with a gap event whose id resumes in the new epoch.

Requires Redis >= 6.2 (exclusive ranges, ``XTRIM MINID``) and one Redis (not a Cluster), or
a ``prefix`` with a hash tag (``"{sse}:"``) so that every key lands in one slot. The keys are
listed in :mod:`litestar_sse.broadcast._backends.redis.scripts`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import re
from collections.abc import Awaitable, Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Final, TypeVar

from redis.asyncio import Redis

from litestar_sse._validation import check_seconds
from litestar_sse.asgi import _runtime as runtime
from litestar_sse.broadcast._backends.base import (
    BackendStats,
    BackendUnavailableError,
    BroadcastBackend,
    IdempotencyKeyReusedError,
    Outgoing,
    Retention,
    RetentionPolicy,
    Snapshot,
    idempotency_fingerprint,
    resolve_retention,
)
from litestar_sse.broadcast._backends.redis.coalesce import PublishQueue
from litestar_sse.broadcast._backends.redis.commands import (
    bulk,
    redis_command,
    run_publish,
    within,
)
from litestar_sse.broadcast._backends.redis.outage import Outage, describe_redis
from litestar_sse.broadcast._backends.redis.reader import StreamReader
from litestar_sse.broadcast._backends.redis.replay import RedisReplay, entry_fields
from litestar_sse.broadcast._backends.redis.scripts import (
    BUMP_EPOCH,
    CHANGE_LOG_LENGTH,
    HISTORY,
    PUBLISH,
    REPLAY_PAGE,
    SNAPSHOT,
    RedisKeys,
)
from litestar_sse.broadcast._events.ids import (
    new_epoch,
    pack_redis_id,
    split_redis_event_id,
)
from litestar_sse.broadcast._events.values import BroadcastMessage, HistoryPage

if TYPE_CHECKING:
    from redis.commands.core import AsyncScript

__all__ = ("RedisStreamBackend",)

_T = TypeVar("_T")
_first: Final = itemgetter(0)
_LINE_BREAK: Final = re.compile(r"\r\n|\r|\n")
_LIMITS_CACHE_SIZE: Final = 4096  # topics whose retention limits are remembered
_LOG_LENGTH: Final = bulk(b"%d" % CHANGE_LOG_LENGTH)
_NO_KEY: Final = bulk(b"0") + bulk(b"")  # no idempotency window, no fingerprint
_NO_EVENT: Final = bulk(b"")  # no event type


class RedisStreamBackend(BroadcastBackend):
    """Events and history in Redis Streams, one stream per topic.

    Args:
        redis: A ``redis.asyncio.Redis`` client (created with ``decode_responses=False``, the
            default) or a URL such as ``"redis://localhost:6379/0"``. A client passed in is
            not closed by :meth:`close`; one made from a URL is.
        prefix: Prefix of every key. All processes sharing topics must use the same one.
        retention: History kept per topic (by count and by age), or a function giving each
            topic its own :class:`Retention` (called once per topic and process).
        block_timeout: Seconds the reader's blocking read waits before it checks in again
            (at most half the client's ``socket_timeout``).
        read_count: Most entries read per stream and per read.
        watch_timeout: Seconds a subscription's commands may take, and it may wait for the
            reader to take a new topic on, before giving up with
            :class:`BackendUnavailableError` (a ``503``).
        publish_timeout: Seconds a publish may take, from waiting for a connection to
            Redis' answer, whatever the client's ``socket_timeout`` (redis-py before 8 has
            none). Past it, :class:`NotPublishedError` if the command was never sent,
            :class:`PublishOutcomeUnknownError` if it was (Redis may still run it when it
            resumes).
        idempotency_window: Seconds an ``idempotency_key`` given to ``publish`` is
            remembered (in Redis, from the moment the event is stored): a publish to the
            same topic with the same key within it stores nothing and returns the first
            event's id, or raises :class:`~litestar_sse.broadcast.errors.IdempotencyKeyReusedError`
            if its event type or data differ. Each key is a Redis key of its own that
            expires with its window: nothing else makes Redis forget it, unless a
            ``maxmemory`` policy that evicts keys is set (use ``noeviction`` or a
            ``volatile-*`` policy with care).
        require_at_startup: Check that Redis answers when the backend starts (with the
            app), within ``watch_timeout``, and raise
            :class:`~litestar_sse.broadcast.errors.BackendUnavailableError` if it does not: the app
            then fails to start. By default the app starts anyway, logs a warning, answers
            ``503`` to publishes and subscriptions, and serves them once Redis is there.

    Every outage is logged once, as a ``WARNING`` of the ``litestar_sse.broadcast`` logger
    naming Redis' address (never its password) and the cause, and its end once, when a call
    succeeds again. Clients get a ``503`` that names neither.

    Publishes and subscriptions in flight at once never ask the client's connection pool
    for more than its ``max_connections`` less one (redis-py's default pool holds 100 and
    refuses to open more): beyond that they wait for a connection, and the one left is the
    reader's. A burst of subscriptions (every client reconnecting after a restart) is then
    served in turn rather than refused. Other code sharing the client takes connections this
    count does not see: give the backend a client of its own.
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
        publish_timeout: float = 2.0,
        idempotency_window: float = 300.0,
        require_at_startup: bool = False,
    ) -> None:
        if not isinstance(require_at_startup, bool):
            raise TypeError(f"require_at_startup must be a bool, got {require_at_startup!r}")
        self.require_at_startup = require_at_startup
        if isinstance(redis, str):
            self._url: str | None = redis
            self._client: Redis | None = None
        else:
            if redis.connection_pool.connection_kwargs.get("decode_responses"):
                raise ValueError("RedisStreamBackend needs a client with decode_responses=False")
            self._url = None
            self._client = redis
        if not isinstance(prefix, str) or not prefix.isprintable():
            raise ValueError(f"prefix must be a str of printable characters, got {prefix!r}")
        if read_count < 1:
            raise ValueError(f"read_count must be >= 1, got {read_count!r}")
        for name, value in (
            ("block_timeout", block_timeout),
            ("watch_timeout", watch_timeout),
            ("publish_timeout", publish_timeout),
            ("idempotency_window", idempotency_window),
        ):
            if check_seconds(value, name) is None:
                raise TypeError(f"{name} must be a positive number of seconds, got None")
        self._publish_timeout = publish_timeout
        self._idempotency_ms = max(1, round(idempotency_window * 1000))
        self.keys = RedisKeys(prefix)
        self._retention = retention
        self._limits_of: dict[str, tuple[int, int, int]] = {}
        self._parts_of: dict[str, tuple[bytes, bytes, bytes]] = {}
        self._fixed_keys = b"".join(
            bulk(key.encode())
            for key in (self.keys.meta, self.keys.trimmed, self.keys.newest, self.keys.log)
        )
        self._block_timeout = block_timeout
        self._read_count = read_count
        self._watch_timeout = watch_timeout
        self._scripts: dict[str, AsyncScript] = {}
        self._history_script: AsyncScript | None = None  # registered on first read_history
        self._reader: StreamReader | None = None
        self._slots: contextlib.AbstractAsyncContextManager[Any] = contextlib.nullcontext()
        self._stats = BackendStats()  # kept across restarts, as the broadcaster's counters
        self._outage = Outage("(not started)")
        self._queue = PublishQueue(self._send_coalesced, publish_timeout)

    @property
    def redis(self) -> Redis:
        """The client in use (after :meth:`start`)."""
        if self._client is None:
            raise RuntimeError("RedisStreamBackend is not started")
        return self._client

    def _limits(self, topic: str) -> tuple[int, int, int]:
        """``(max events or -1, max age in ms or 0, ms the stream lives after an event or
        0)`` of ``topic``."""
        limits = self._limits_of.get(topic)
        if limits is None:
            retention = resolve_retention(self._retention, topic)
            max_events = -1 if retention.max_events is None else retention.max_events
            max_age = 0 if retention.max_age is None else max(1, round(retention.max_age * 1000))
            lifetimes = [] if max_age == 0 else [max_age + 1000]
            if retention.idle_ttl is not None:
                lifetimes.append(max(1, round(retention.idle_ttl * 1000)))
            limits = (max_events, max_age, min(lifetimes, default=0))
            # One entry per topic, for a retention given per topic; topics may be any number
            # (clients may choose them), so the cache forgets them all once it is full.
            if len(self._limits_of) >= _LIMITS_CACHE_SIZE:
                self._limits_of.clear()
            self._limits_of[topic] = limits
        return limits

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Create the client (from a URL) and start the reader; on trio, raise RuntimeError."""
        if runtime.on_trio():
            raise RuntimeError(
                "RedisStreamBackend needs asyncio (redis-py's asyncio client), and this app runs "
                "on trio: run it on asyncio, or use MemoryBackend on trio"
            )
        if self._reader is not None:
            return
        if self._client is None:
            assert self._url is not None
            self._client = Redis.from_url(self._url)
        client = self._client
        password = client.connection_pool.connection_kwargs.get("password")
        self._outage = Outage(describe_redis(client), (str(password) if password else "",))
        if self.require_at_startup:
            try:
                await self._checked(within(client, self._watch_timeout, self._ping(client)))
            except BackendUnavailableError as exc:
                if self._url is not None:
                    await client.aclose()
                    self._client = None
                raise BackendUnavailableError(
                    detail=f"Redis at {self._outage.where} is unavailable at startup "
                    f"({self._outage.cause(exc)}); require_at_startup=True"
                ) from exc
        self._scripts = {
            "publish": client.register_script(PUBLISH),
            "snapshot": client.register_script(SNAPSHOT),
            "replay_page": client.register_script(REPLAY_PAGE),
        }
        self._slots = _pool_slots(client)
        # a queue of this start's loop: nothing of an earlier one (a round trip the loop's
        # end cut off) holds it
        self._queue = PublishQueue(self._send_coalesced, self._publish_timeout)
        block_timeout = self._block_timeout
        socket_timeout = _socket_timeout(client)
        if socket_timeout is not None:
            # A blocking read must return before the client gives up on the socket.
            block_timeout = min(block_timeout, socket_timeout / 2)
        self._reader = StreamReader(
            client,
            self.sink,
            self.keys,
            client.register_script(BUMP_EPOCH),
            block_ms=max(1, round(block_timeout * 1000)),
            read_count=self._read_count,
            slots=self._slots,
            stats=self._stats,
            outage=self._outage,
        )
        self._reader.start()

    async def _ping(self, client: Redis) -> None:
        async with redis_command(client, self._slots):
            await client.ping()

    def stats(self) -> BackendStats:
        """The reader's failed rounds and recoveries, since the backend was created."""
        return dataclasses.replace(self._stats)

    async def close(self) -> None:
        """Stop the reader; close the client if it was made from a URL."""
        reader, self._reader = self._reader, None
        if reader is not None:
            await reader.stop()
        if self._url is not None and self._client is not None:
            await self._client.aclose()
            self._client = None

    # -- publishing --------------------------------------------------------------------------

    async def publish(
        self,
        topic: str,
        event: bytes | None,
        data: bytes,
        *,
        idempotency_key: str | None = None,
    ) -> str:
        """Add the event to the topic's stream, within ``publish_timeout``.

        Publishes made while another one of this process is in flight go to Redis together,
        in one round trip, as soon as it returns (see
        :mod:`~litestar_sse.broadcast._backends.redis.coalesce`); each still gets its own id
        or error.

        Raises:
            IdempotencyKeyReusedError: ``idempotency_key`` was used on ``topic`` with
                another event (nothing stored).
            NotPublishedError: the command never reached Redis.
            PublishOutcomeUnknownError: it did, and no answer came.
        """
        return await self._queue.publish(Outgoing(topic, event, data, idempotency_key))

    async def publish_many(self, events: Sequence[Outgoing]) -> list[str]:
        """Add ``events`` to their topics' streams in one script, one round trip, within
        ``publish_timeout``; return their ids in order.

        The script runs atomically: every event is stored, or none. When Redis fails, as for
        :meth:`publish`: :class:`NotPublishedError` if the script never reached Redis (none
        stored), :class:`PublishOutcomeUnknownError` if no answer came (all or none may
        have been stored: retry the whole batch with the same idempotency keys).

        Raises:
            IdempotencyKeyReusedError: an event's ``idempotency_key`` was used on its topic
                with another event (nothing of the batch stored).
            NotPublishedError, PublishOutcomeUnknownError: as above.
        """
        if not events:
            return []
        reply = await self._run_batch(events, atomic=True)
        if reply[0] == b"!":
            raise IdempotencyKeyReusedError()
        ids = []
        for result in _event_ids(reply):
            if isinstance(result, BaseException):  # never, all-or-nothing: the reply above
                raise result
            ids.append(result)
        return ids

    async def _send_coalesced(
        self, events: Sequence[Outgoing], timeout: float
    ) -> list[str | BaseException]:
        """The coalesced publishes, one round trip: a reused key refuses its event only."""
        return _event_ids(await self._run_batch(events, atomic=False, timeout=timeout))

    async def _run_batch(
        self, events: Sequence[Outgoing], *, atomic: bool, timeout: float | None = None
    ) -> Any:
        """Run the publish script on ``events``, written in RESP here (see ``publish.lua``
        for its keys and arguments): per topic, its keys and limits are written once."""
        count = len(events)
        keys: list[bytes] = [bulk(b"%d" % (4 + 3 * count)), self._fixed_keys]
        args: list[bytes] = [bulk(new_epoch().encode()), _LOG_LENGTH]
        args += (b"$1\r\n1\r\n" if atomic else b"$1\r\n0\r\n", bulk(b"%d" % count))
        window = bulk(b"%d" % self._idempotency_ms)
        parts_of = self._parts_of
        for topic, event, data, idempotency_key in events:
            parts = parts_of.get(topic) or self._topic_parts(topic)
            if idempotency_key is None:
                keys.append(parts[0])
                args += (parts[1], _NO_KEY)
            else:
                idempotency = self.keys.idempotency(topic, idempotency_key).encode()
                fingerprint = idempotency_fingerprint(event, data).hex().encode()
                keys += (parts[2], bulk(idempotency))
                args += (parts[1], window, bulk(fingerprint))
            args += (b"$%d\r\n" % len(data), data, b"\r\n")
            args.append(_NO_EVENT if event is None else bulk(b"e" + event))
        return await self._checked(
            run_publish(
                self.redis,
                self._slots,
                self._scripts["publish"],
                keys + args,
                1 + 4 + 3 * count + 4 + 8 * count,
                self._publish_timeout if timeout is None else timeout,
            )
        )

    def _topic_parts(self, topic: str) -> tuple[bytes, bytes, bytes]:
        """What the publish script takes of ``topic``, in RESP: its keys (stream, state,
        stream again in place of an idempotency key), its first arguments (topic, limits),
        and its keys without the last."""
        max_events, max_age, lifetime = self._limits(topic)
        stream = bulk(self.keys.topic(topic).encode())
        state = bulk(self.keys.state(topic).encode())
        head = b"".join(
            bulk(value)
            for value in (topic.encode(), b"%d" % max_events, b"%d" % max_age, b"%d" % lifetime)
        )
        parts = (stream + state + stream, head, stream + state)
        if len(self._parts_of) >= _LIMITS_CACHE_SIZE:
            self._parts_of.clear()
        self._parts_of[topic] = parts
        return parts

    # -- subscribing -------------------------------------------------------------------------

    async def watch(self, topics: Sequence[str]) -> None:
        """Have the reader take on the topics it does not read yet, and wait until it has."""
        if self._reader is None:
            raise BackendUnavailableError(detail="The broadcaster is not started")
        await self._checked(self._reader.watch(topics, self._watch_timeout))

    def unwatch(self, topic: str) -> None:
        """Stop reading ``topic``: its last local subscriber left."""
        if self._reader is not None:
            self._reader.unwatch(topic)

    async def snapshot(self, topics: Sequence[str], last_event_id: str | None) -> Snapshot:
        """Read the epoch, the newest id and which topics have missed events, in one script
        of a few commands per topic; the events are read page by page by the
        :class:`~.replay.RedisReplay` once the stream runs."""
        last_epoch, last_id, invalid = "", "0-0", False
        if last_event_id is not None:
            parsed = split_redis_event_id(last_event_id)
            if parsed is None:
                invalid = True
            else:
                last_epoch, last_id = parsed
        keys = [self.keys.meta, self.keys.trimmed, self.keys.newest]
        args: list[Any] = [new_epoch(), last_epoch, last_id]
        for topic in topics:
            keys += (self.keys.topic(topic), self.keys.state(topic))
            _, max_age, lifetime = self._limits(topic)
            args += (topic, max_age, lifetime)
        reply = await self._checked(
            within(self.redis, self._watch_timeout, self._read_snapshot(keys, args))
        )
        epoch, head, status = reply[0].decode(), reply[1], reply[2]
        head_id = f"{epoch}-{head.decode()}"
        live_after = pack_redis_id(head)
        if last_event_id is None:
            return Snapshot(resumed_from=head_id, live_after=live_after)
        if invalid or status != b"ok":
            reason = "epoch" if status == b"epoch" and not invalid else "invalid"
            return Snapshot(
                resumed_from=head_id, gap=reason, gap_topics=tuple(topics), live_after=live_after
            )
        gaps = tuple(topics[index - 1] for index in reply[3])
        missed = [topics[index - 1] for index in reply[4]]
        replay = None
        if missed:
            prefix = epoch.encode() + b"-"
            event = self.sink.format.event

            def encode(stream_id: bytes, fields: dict[bytes, bytes]) -> bytes:
                return event(prefix + stream_id, fields.get(b"e"), fields.get(b"d", b""))

            replay = RedisReplay(
                self._read_page,
                (self.keys.trimmed, self.keys.newest),
                [(topic, self._stream_keys(topic), self._limits(topic)[2]) for topic in missed],
                last_id,
                head,
                encode,
                self._read_count,
                head_id,
            )
        if gaps:
            return Snapshot(
                resumed_from=head_id,
                gap="retention",
                gap_topics=gaps,
                live_after=live_after,
                replay=replay,
            )
        return Snapshot(resumed_from=last_event_id, live_after=live_after, replay=replay)

    def _stream_keys(self, topic: str) -> tuple[str, str]:
        """The stream and the state of ``topic``."""
        return self.keys.topic(topic), self.keys.state(topic)

    async def _read_snapshot(self, keys: list[Any], args: list[Any]) -> Any:
        async with redis_command(self.redis, self._slots):
            return await self._scripts["snapshot"](keys=keys, args=args)

    async def _read_page(self, keys: list[Any], args: list[Any]) -> list[Any]:
        """One page of a replay, within ``watch_timeout``."""
        return list(
            await self._checked(
                within(self.redis, self._watch_timeout, self._page_script(keys, args))
            )
        )

    async def _page_script(self, keys: list[Any], args: list[Any]) -> Any:
        async with redis_command(self.redis, self._slots):
            return await self._scripts["replay_page"](keys=keys, args=args)

    async def _checked(self, call: Awaitable[_T]) -> _T:
        """Await a call to Redis, noting whether Redis answered (see
        :class:`~.outage.Outage`: one log line per outage)."""
        try:
            result = await call
        except BackendUnavailableError as exc:
            self._outage.failed(exc)
            raise
        self._outage.recovered()
        return result

    async def read_history(
        self,
        topics: Sequence[str],
        after: str | None,
        until: str | None,
        limit: int,
        *,
        check_gaps: bool = True,
    ) -> HistoryPage:
        """Read the kept events of ``topics`` after ``after`` and up to ``until``, at most
        ``limit`` of them, in position order (see ``BroadcastBackend.read_history``).

        Raises:
            ValueError: ``until`` is not a Redis-backed id.
            BackendUnavailableError: Redis cannot be reached (``503``).
        """
        after_epoch, after_id = "", "0-0"
        if after is not None:
            parsed = split_redis_event_id(after)
            if parsed is None:
                return HistoryPage(gap="invalid", gap_topics=tuple(topics))
            after_epoch, after_id = parsed if check_gaps else ("", parsed[1])
        until_epoch, until_id = "", ""
        if until is not None:
            bound = split_redis_event_id(until)
            if bound is None:
                raise ValueError(f"until must be an id of this history, got {until!r:.80}")
            until_epoch, until_id = bound
        keys: list[Any] = [self.keys.meta, self.keys.trimmed, self.keys.newest]
        args: list[Any] = [new_epoch(), after_epoch, after_id, until_epoch, until_id, limit]
        for topic in topics:
            keys += (self.keys.topic(topic), self.keys.state(topic))
            _, max_age, lifetime = self._limits(topic)
            args += (topic, max_age, lifetime)
        reply = await self._checked(
            within(self.redis, self._watch_timeout, self._run_history(keys, args))
        )
        status = reply[2]
        if status != b"ok":
            reason = "epoch" if status == b"epoch" else "invalid"
            return HistoryPage(gap=reason, gap_topics=tuple(topics))
        epoch = reply[0].decode()
        gapped = {index - 1 for index in reply[3]}
        ranges = iter(reply[4])
        found: list[tuple[int, str, bytes, dict[bytes, bytes]]] = []
        more = False
        for index, topic in enumerate(topics):
            if index in gapped:
                continue
            items = next(ranges)
            more = more or len(items) >= limit
            for stream_id, flat in items:
                found.append((pack_redis_id(stream_id), topic, stream_id, entry_fields(flat)))
        found.sort(key=_first)
        if len(found) > limit:
            del found[limit:]
            more = True
        messages = [
            BroadcastMessage(topic, f"{epoch}-{stream_id.decode()}", *_event_and_data(fields))
            for _, topic, stream_id, fields in found
        ]
        gaps = tuple(topics[index] for index in sorted(gapped))
        return HistoryPage(messages, more, "retention" if gaps else None, gaps)

    async def _run_history(self, keys: list[Any], args: list[Any]) -> Any:
        script = self._history_script
        if script is None or script.registered_client is not self.redis:
            script = self._history_script = self.redis.register_script(HISTORY)
        async with redis_command(self.redis, self._slots):
            return await script(keys=keys, args=args)

    async def topic_of(self, event_id: str) -> str | None:
        """The topic of ``event_id`` while the change log holds it (the newest 100,000
        events); else ``None``.

        Raises:
            BackendUnavailableError: Redis cannot be reached (``503``).
        """
        parsed = split_redis_event_id(event_id)
        if parsed is None:
            return None
        epoch, stream_id = parsed
        reply = await self._checked(
            within(self.redis, self._watch_timeout, self._read_log(stream_id))
        )
        known, entries = reply
        if known is None or known.decode() != epoch or not entries:
            return None
        topic = entries[0][1].get(b"t")
        return None if topic is None else str(topic.decode())

    async def _read_log(self, stream_id: str) -> Any:
        async with redis_command(self.redis, self._slots):
            pipe = self.redis.pipeline(transaction=True)
            pipe.hget(self.keys.meta, "epoch")
            pipe.xrange(self.keys.log, stream_id, stream_id, count=1)
            return await pipe.execute()


def _pool_slots(client: Redis) -> contextlib.AbstractAsyncContextManager[Any]:
    """What the commands of publishers and subscribers enter: a semaphore with the pool's
    size, less the reader's connection; nothing for a pool without a practical limit."""
    limit = getattr(client.connection_pool, "max_connections", None)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit >= 2**31 - 1:
        return contextlib.nullcontext()
    return asyncio.Semaphore(max(1, limit - 1))


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


def _event_and_data(fields: dict[bytes, bytes]) -> tuple[str | None, str]:
    event = fields.get(b"e")
    data = fields.get(b"d", b"").decode()
    if "\r" in data or "\n" in data:
        data = "\n".join(_LINE_BREAK.split(data))
    return (None if event is None else event.decode()), data


def _event_ids(reply: Sequence[bytes]) -> list[str | BaseException]:
    """The publish script's reply: per event its full id, or the error of a reused key."""
    prefix = reply[0].decode() + "-"
    text = reply[1].decode()
    if "!" not in text and "=" not in text:  # every event new
        return [prefix + result for result in text.split(" ")]
    results: list[str | BaseException] = []
    for result in text.split(" "):
        if result == "!":
            results.append(IdempotencyKeyReusedError())
        elif result[:1] == "=":  # a repeat: the id stored under its key
            results.append(result[1:])
        else:
            results.append(prefix + result)
    return results
