"""``MemoryBackend``: history and fan-out inside one process, no setup.

One sequence numbers every event of the hub, across topics, so one id resumes any set of
topics exactly. The epoch is random per backend instance: an id from before a restart, or from
another worker process, is recognised as foreign and answered with a gap event.
"""

from __future__ import annotations

import itertools
import time
from array import array
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from operator import itemgetter
from typing import Final

from litestar_sse._validation import check_count, check_required_count, check_seconds
from litestar_sse.broadcast._backends.base import (
    BroadcastBackend,
    IdempotencyKeyReusedError,
    Outgoing,
    Retention,
    RetentionPolicy,
    Snapshot,
    TooManyIdempotencyKeysError,
    current_principal,
    idempotency_fingerprint,
    resolve_retention,
)
from litestar_sse.broadcast._backends.memory.replay import MemoryReplay
from litestar_sse.broadcast._events.ids import new_epoch, parse_memory_position, split_event_id
from litestar_sse.broadcast._events.values import (
    BroadcastMessage,
    HistoryPage,
    event_position,
    parse_event_block,
)

__all__ = ("ENTRY_OVERHEAD", "MAX_IDEMPOTENCY_KEYS", "TOPIC_INDEX_LENGTH", "MemoryBackend")

_Entry = tuple[int, float, bytes]

ENTRY_OVERHEAD: Final = 160
"""Bytes counted for each kept event on top of its encoded bytes: what CPython spends on the
entry (a tuple, its position and time, the bytes object's header, the deque's slot)."""


MAX_IDEMPOTENCY_KEYS: Final = 100_000
"""The default ``max_idempotency_keys`` of :class:`MemoryBackend`: most idempotency keys
remembered at once (about 300 bytes each, at most 30 MB)."""

TOPIC_INDEX_LENGTH: Final = 100_000
"""Newest events whose topic :meth:`MemoryBackend.topic_of` can tell (one reference each)."""

_first: Final = itemgetter(0)


class _TopicLog:
    __slots__ = ("entries", "idle_ttl", "max_age", "owner", "serial", "size", "trimmed")

    def __init__(
        self, retention: Retention, trimmed: int, owner: Hashable, serial: int = 0
    ) -> None:
        self.owner = owner
        """The principal whose publish created the topic."""
        self.serial = serial
        """Numbers this topic's history in the ring of the newest events' topics."""
        self.entries: deque[_Entry] = deque(maxlen=retention.max_events)
        self.max_age = retention.max_age
        self.idle_ttl = retention.idle_ttl
        self.trimmed = trimmed
        """Position of the newest event removed from the history (0: none)."""
        self.size = 0
        """Bytes counted for the entries (see :data:`ENTRY_OVERHEAD`)."""

    def drop_oldest(self) -> int:
        """Remove the oldest entry; return the bytes it counted for."""
        position, _, chunk = self.entries.popleft()
        self.trimmed = position
        size = len(chunk) + ENTRY_OVERHEAD
        self.size -= size
        return size

    def expire(self, now: float) -> int:
        """Remove the entries older than ``max_age`` (every entry, once the newest is older
        than ``idle_ttl``); return the bytes they counted for."""
        idle = self._expire_idle(now) if self.idle_ttl is not None else 0
        if self.max_age is None:
            return idle
        entries, oldest, freed = self.entries, now - self.max_age, idle
        while entries and entries[0][1] <= oldest:
            freed += self.drop_oldest()
        return freed

    def _expire_idle(self, now: float) -> int:
        entries, freed = self.entries, 0
        if entries and self.idle_ttl is not None and entries[-1][1] <= now - self.idle_ttl:
            while entries:
                freed += self.drop_oldest()
        return freed


class MemoryBackend(BroadcastBackend):
    """Keeps each topic's recent events in this process; the default backend.

    The history is bounded as a whole, whoever creates topics: at most
    ``max_topics_retained`` topics, and at most ``max_history_bytes`` bytes of events.

    Past the topic limit, the *principal* holding the most topics gives up the one it
    published to least recently: one client creating topics by the thousand (sessions,
    requests) forgets its own, never the topics of a client that holds fewer. A topic
    belongs to the principal whose publish created it: the one given by
    :func:`~litestar_sse.broadcast.publishing_as` around the publish; else, when the
    broadcaster is given to :class:`~litestar_sse.SSEConfig` and publishes while handling a
    request (or in a task started by one), the request's ``client_key`` (its client address,
    by default); else ``None``. So another client's topic is forgotten only once the
    flooding client holds no more topics than it: with the default limit of 10,000, never
    while fewer than 10,000 principals (addresses) share it.

    Past the byte limit, the topic published to least recently loses its oldest events, and
    is forgotten with its last one, whoever it belongs to. With ``max_age``, the history of
    a topic that is no longer published to also expires, and the topic is then forgotten.
    A client resuming from before a topic was forgotten gets a gap event for it (reason
    ``retention``; it cannot be told apart from a topic that never had events). Live
    subscribers are never affected: only what a reconnecting client can get back is.

    Args:
        retention: History kept per topic (by count and by age), or a function giving each
            topic its own :class:`Retention` (called once per topic).
        max_topics_retained: Most topics with a history (default 10,000; ``None``: no
            limit). Each costs about 1 KiB besides its events.
        max_history_bytes: Most bytes of history, all topics together (default 64 MiB;
            ``None``: no limit): each event counts its encoded bytes plus
            :data:`ENTRY_OVERHEAD` (160) for its bookkeeping, so the figure is close to the
            memory the history takes. An event larger than that is delivered live but not
            kept.
        idempotency_window: Seconds an ``idempotency_key`` given to ``publish`` is
            remembered, from the moment its event is stored: a publish to the same topic
            with the same key within it stores nothing and returns the first event's id (or
            raises :class:`~litestar_sse.broadcast.errors.IdempotencyKeyReusedError` if its event
            type or data differ). A key is never forgotten before its window ends, whatever
            else is published.
        max_idempotency_keys: Most keys remembered at once (default 100,000). When that
            many are within their window, a publish with a new key is refused with
            :class:`~litestar_sse.broadcast.errors.TooManyIdempotencyKeysError` (a ``429``; nothing
            stored) until the oldest expire: publishes with keys can then fail, but never
            store a retried event twice.
        clock: Monotonic clock, in seconds, for ``max_age`` and ``idempotency_window``
            (replaceable in tests).

    Attributes:
        epoch: The random epoch of this backend's ids.
    """

    tracks_principals = True

    def __init__(
        self,
        *,
        retention: RetentionPolicy = Retention(),  # noqa: B008 - immutable
        max_topics_retained: int | None = 10_000,
        max_history_bytes: int | None = 64 * 2**20,
        idempotency_window: float = 300.0,
        max_idempotency_keys: int = MAX_IDEMPOTENCY_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        window = check_seconds(idempotency_window, "idempotency_window")
        if window is None:
            raise TypeError("idempotency_window must be a positive number of seconds, got None")
        self._idempotency_window = window
        self.max_idempotency_keys = check_required_count(
            max_idempotency_keys, "max_idempotency_keys", minimum=1
        )
        self._keys: dict[tuple[str, str], tuple[str, float, bytes]] = {}
        """(topic, idempotency key) -> (event id, when it is forgotten, fingerprint of the
        event), oldest first (the window is constant: in the order they expire)."""
        self.max_topics_retained = check_count(
            max_topics_retained, "max_topics_retained", minimum=1
        )
        self.max_history_bytes = check_count(max_history_bytes, "max_history_bytes", minimum=1)
        self.epoch = new_epoch()
        self._epoch_prefix = self.epoch.encode() + b"-"
        self._retention = retention
        self._clock = clock
        self._position = 0
        self._topic_ring = array("I")
        self._topic_serials: dict[int, str] = {}
        self._serial = 0
        self._logs: dict[str, _TopicLog] = {}
        """The topics with a history, the one published to least recently first."""
        self._size = 0
        """Bytes counted for every topic's history."""
        self._rotation: deque[str] = deque()
        self._forgotten = 0
        """Newest position of the topics whose whole history expired and was dropped."""
        self._owned: dict[Hashable, dict[str, None]] = {}
        """Per principal, its topics, the one published to least recently first."""
        self._holding: dict[int, dict[Hashable, None]] = {}
        """Principals by the number of topics they hold (an ordered set each)."""
        self._most = 0
        """The most topics a principal holds."""

    @property
    def topics_retained(self) -> int:
        """Topics with a history right now."""
        return len(self._logs)

    @property
    def history_bytes(self) -> int:
        """Bytes counted for the history of every topic (see ``max_history_bytes``)."""
        return self._size

    def _log(self, topic: str) -> _TopicLog:
        """The history of ``topic``, moved to the end of the order (published most recently)."""
        logs = self._logs
        log = logs.pop(topic, None)
        if log is None:
            # A topic dropped earlier may have had events up to _forgotten: assume it did.
            retention = resolve_retention(self._retention, topic)
            serial = self._serial % 0xFFFF_FFFF + 1  # 4 bytes in the ring; live ones kept
            while serial in self._topic_serials:
                serial = serial % 0xFFFF_FFFF + 1
            self._serial = serial
            log = _TopicLog(retention, self._forgotten, current_principal(), serial)
            self._topic_serials[serial] = topic
            if retention.max_age is not None or retention.idle_ttl is not None:
                self._rotation.append(topic)
            self._own(log.owner, topic)
        else:
            owned = self._owned[log.owner]
            del owned[topic]
            owned[topic] = None
        logs[topic] = log
        return log

    def _own(self, owner: Hashable, topic: str) -> None:
        owned = self._owned.get(owner)
        if owned is None:
            owned = self._owned[owner] = {}
        count = len(owned)
        owned[topic] = None
        self._regroup(owner, count, count + 1)

    def _regroup(self, owner: Hashable, before: int, after: int) -> None:
        """``owner`` went from holding ``before`` topics to ``after``."""
        holding = self._holding
        if before:
            group = holding[before]
            del group[owner]
            if not group:
                del holding[before]
                if self._most == before and after < before:
                    self._most = after
        if after:
            holding.setdefault(after, {})[owner] = None
            self._most = max(self._most, after)
        else:
            del self._owned[owner]

    def _forget(self, topic: str, log: _TopicLog) -> None:
        newest = log.entries[-1][0] if log.entries else log.trimmed
        self._forgotten = max(self._forgotten, newest)
        self._size -= log.size
        del self._logs[topic]
        del self._topic_serials[log.serial]
        owned = self._owned[log.owner]
        del owned[topic]
        self._regroup(log.owner, len(owned) + 1, len(owned))

    def _enforce_limits(self) -> None:
        # The topic published to least recently gives way first: whole, past the topic limit;
        # event by event, past the byte limit. Amortised O(1) per publish.
        logs = self._logs
        limit = self.max_topics_retained
        while limit is not None and len(logs) > limit:
            # the principal with the most topics gives up its least recently published one
            owner = next(iter(self._holding[self._most]))
            topic = next(iter(self._owned[owner]))
            self._forget(topic, logs[topic])
        budget = self.max_history_bytes
        while budget is not None and self._size > budget:
            topic = next(iter(logs))
            log = logs[topic]
            if log.entries:
                self._size -= log.drop_oldest()
            if not log.entries:
                self._forget(topic, log)

    def _sweep(self, now: float) -> None:
        # Two topics per publish, in turn: the history of a topic nobody publishes to any
        # more still expires, and an empty one is dropped, at a constant cost per publish.
        rotation = self._rotation
        for _ in range(min(2, len(rotation))):
            topic = rotation.popleft()
            log = self._logs.get(topic)
            if log is None:
                continue
            self._size -= log.expire(now)
            if log.entries:
                rotation.append(topic)
            else:
                self._forget(topic, log)

    async def publish(
        self,
        topic: str,
        event: bytes | None,
        data: bytes,
        *,
        idempotency_key: str | None = None,
    ) -> str:
        """Number the event, keep it in the topic's history and deliver it locally.

        With an ``idempotency_key`` used on ``topic`` within ``idempotency_window``, only
        return the id of the event published with it.

        Raises:
            IdempotencyKeyReusedError: the key was used on ``topic`` with another event.
            TooManyIdempotencyKeysError: a new key, and ``max_idempotency_keys`` are held.
        """
        if idempotency_key is None:
            return self._store(topic, event, data)
        fingerprint = idempotency_fingerprint(event, data)
        known = self._known_key((topic, idempotency_key), fingerprint)
        if known is not None:
            return known
        text = self._store(topic, event, data)
        self._remember((topic, idempotency_key), text, fingerprint)
        return text

    async def publish_many(self, events: Sequence[Outgoing]) -> list[str]:
        """Publish ``events`` in order, as :meth:`publish` would, all or none: every
        idempotency key is checked before anything is stored (a key used by an earlier
        event of the batch makes a repeat of it).

        Raises:
            IdempotencyKeyReusedError: a key was used on its topic with another event
                (nothing of the batch stored).
            TooManyIdempotencyKeysError: the batch's new keys do not fit in
                ``max_idempotency_keys`` (nothing stored).
        """
        plan: list[str | int | None] = []  # per event: a stored id, an earlier event's index
        claimed: dict[tuple[str, str], tuple[int, bytes]] = {}
        prints: list[bytes] = []
        for index, (topic, event, data, idempotency_key) in enumerate(events):
            fingerprint = b""
            found: str | int | None = None
            if idempotency_key is not None:
                key = (topic, idempotency_key)
                fingerprint = idempotency_fingerprint(event, data)
                mine = claimed.get(key)
                if mine is not None:
                    if mine[1] != fingerprint:
                        raise IdempotencyKeyReusedError()
                    found = mine[0]
                else:
                    found = self._known_key(key, fingerprint, room_for=len(claimed) + 1)
                    if found is None:
                        claimed[key] = (index, fingerprint)
            plan.append(found)
            prints.append(fingerprint)
        ids: list[str] = []
        for (topic, event, data, idempotency_key), found in zip(events, plan, strict=True):
            if isinstance(found, str):
                ids.append(found)
            elif found is not None:
                ids.append(ids[found])
            else:
                text = self._store(topic, event, data)
                if idempotency_key is not None:
                    self._remember((topic, idempotency_key), text, prints[len(ids)])
                ids.append(text)
        return ids

    def _store(self, topic: str, event: bytes | None, data: bytes) -> str:
        """Number the event, keep it in the topic's history, deliver it; return its id."""
        self._position = position = self._position + 1
        event_id = self._epoch_prefix + b"%d" % position
        chunk = self.sink.format.event(event_id, event, data)
        log = self._log(topic)
        self._index_topic(position, log.serial)
        entries = log.entries
        if entries.maxlen is not None and len(entries) >= entries.maxlen:
            if entries:
                self._size -= log.drop_oldest()
            else:  # max_events=0: nothing is kept
                log.trimmed = position
        now = self._clock()
        if entries.maxlen != 0:
            entries.append((position, now, chunk))
            size = len(chunk) + ENTRY_OVERHEAD
            log.size += size
            self._size += size
        self._size -= log.expire(now)
        if self._rotation:
            self._sweep(now)
        self._enforce_limits()
        self.sink.deliver(topic, position, chunk, event_id, event, data)
        return event_id.decode()

    def _remember(self, key: tuple[str, str], event_id: str, fingerprint: bytes) -> None:
        self._keys[key] = (event_id, self._clock() + self._idempotency_window, fingerprint)

    def _known_key(self, key: tuple[str, str], fingerprint: bytes, room_for: int = 1) -> str | None:
        """The id of the event published with ``key`` (topic, key), if it is still
        remembered; ``None`` for a new key, which there is room for (``room_for``: new keys
        to be stored, this one included).

        Raises:
            IdempotencyKeyReusedError: ``key`` was used with another event.
            TooManyIdempotencyKeysError: a new key, and no room for it.
        """
        keys, now = self._keys, self._clock()
        while keys:  # forget the expired keys, oldest first (a constant window: in order)
            oldest = next(iter(keys))
            if keys[oldest][1] > now:
                break
            del keys[oldest]
        found = keys.get(key)
        if found is None:
            if len(keys) + room_for > self.max_idempotency_keys:
                raise TooManyIdempotencyKeysError(detail="Too many idempotency keys in use")
            return None
        if found[2] != fingerprint:
            raise IdempotencyKeyReusedError()
        return found[0]

    async def snapshot(self, topics: Sequence[str], last_event_id: str | None) -> Snapshot:
        """Decide where the subscriber resumes, a few operations per topic; the missed events
        are read from the history page by page (:class:`~.replay.MemoryReplay`).

        Atomic with the registration of the subscriber (no await inside).
        """
        head = f"{self.epoch}-{self._position}"
        if last_event_id is None:
            return Snapshot(resumed_from=head)
        parts = split_event_id(last_event_id)
        if parts is None:
            return Snapshot(resumed_from=head, gap="invalid", gap_topics=tuple(topics))
        if parts[0] != self.epoch:
            return Snapshot(resumed_from=head, gap="epoch", gap_topics=tuple(topics))
        last = parse_memory_position(parts[1])
        if last is None or last > self._position:
            return Snapshot(resumed_from=head, gap="invalid", gap_topics=tuple(topics))
        now = self._clock()
        missed: list[str] = []
        gaps: list[str] = []
        for topic in topics:
            log = self._logs.get(topic)
            if log is None:
                if self._forgotten > last:
                    gaps.append(topic)  # it may have been one of the dropped topics
                continue
            self._size -= log.expire(now)
            if log.trimmed > last:
                gaps.append(topic)
            elif log.entries and log.entries[-1][0] > last:
                missed.append(topic)
        replay = MemoryReplay(self._logs, missed, last, self._position, head) if missed else None
        if gaps:
            return Snapshot(
                resumed_from=head, gap="retention", gap_topics=tuple(gaps), replay=replay
            )
        return Snapshot(resumed_from=last_event_id, replay=replay)

    def _index_topic(self, position: int, serial: int) -> None:
        """Note the topic (by serial) of the event at ``position``, the newest."""
        ring = self._topic_ring
        if len(ring) < TOPIC_INDEX_LENGTH:
            ring.append(serial)
        else:
            ring[(position - 1) % TOPIC_INDEX_LENGTH] = serial

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
            ValueError: ``until`` is not an id of this backend's history.
        """
        head_position = self._position
        upto = head_position
        if until is not None:
            parts = split_event_id(until)
            bound = None if parts is None else parse_memory_position(parts[1])
            if parts is None or parts[0] != self.epoch or bound is None:
                raise ValueError(f"until must be an id of this history, got {until!r:.80}")
            upto = min(bound, head_position)
        last = 0
        checked = check_gaps and after is not None
        if after is not None:
            parts = split_event_id(after)
            if parts is None or (checked and parts[0] != self.epoch):
                reason = "invalid" if parts is None else "epoch"
                return HistoryPage(gap=reason, gap_topics=tuple(topics))
            position = parse_memory_position(parts[1])
            if position is None or position > head_position:
                return HistoryPage(gap="invalid", gap_topics=tuple(topics))
            last = position
        now = self._clock()
        found: list[tuple[int, str, bytes]] = []
        gaps: list[str] = []
        more = False
        for topic in topics:
            log = self._logs.get(topic)
            if log is None:
                if checked and self._forgotten > last:
                    gaps.append(topic)  # it may have been one of the dropped topics
                continue
            self._size -= log.expire(now)
            if checked and log.trimmed > last:
                gaps.append(topic)
                continue
            entries = log.entries
            start = bisect_right(entries, last, key=_first)
            for taken, (position, _, chunk) in enumerate(itertools.islice(entries, start, None)):
                if position > upto:
                    break
                if taken == limit:
                    more = True  # the rest of this topic is newer than what this page takes
                    break
                found.append((position, topic, chunk))
        found.sort(key=_first)
        if len(found) > limit:
            del found[limit:]
            more = True
        sep = self.sink.format.sep_bytes
        messages = []
        for position, topic, chunk in found:
            event, _, data = parse_event_block(chunk, sep)  # one event: blank lines ignored
            messages.append(BroadcastMessage(topic, f"{self.epoch}-{position}", event, data))
        gap = "retention" if gaps else None
        return HistoryPage(messages, more, gap, tuple(gaps))

    async def topic_of(self, event_id: str) -> str | None:
        """The topic of ``event_id`` while its event is kept in history and is among the
        newest :data:`TOPIC_INDEX_LENGTH` events; else ``None``.

        A few operations whatever the id: one look-up in the ring of the newest events'
        topics, then one search in that topic's history that the event is still kept.
        """
        parsed = event_position(event_id)
        if parsed is None or parsed[0] != self.epoch:
            return None
        position = parsed[1]
        if not 0 < position <= self._position or position <= self._position - TOPIC_INDEX_LENGTH:
            return None
        topic = self._topic_serials.get(self._topic_ring[(position - 1) % TOPIC_INDEX_LENGTH])
        log = None if topic is None else self._logs.get(topic)
        if topic is None or log is None:
            return None
        entries = log.entries
        if not entries or entries[0][0] > position or entries[-1][0] < position:
            return None
        index = bisect_left(entries, position, key=_first)
        return topic if entries[index][0] == position else None
