"""Reading the Redis history as values: pages of events, and the topic of an id.

The base of :class:`~litestar_sse.broadcast.RedisStreamBackend`, kept apart from the publish
and subscribe paths. A page is one Lua script, atomic like a subscription's snapshot: the
epoch, the gap checks and at most ``limit`` entries per topic stream (``XRANGE ... COUNT``).
The topic of an id comes from the change log (``<prefix>log``), which holds the newest
:data:`~litestar_sse.broadcast.redis_scripts.CHANGE_LOG_LENGTH` events' ids and topics.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Awaitable, Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Final, TypeVar

from litestar_sse.broadcast.backend import BackendUnavailableError, BroadcastBackend
from litestar_sse.broadcast.history import BroadcastMessage, HistoryPage
from litestar_sse.broadcast.ids import (
    new_epoch,
    pack_redis_id,
    split_redis_event_id,
)
from litestar_sse.broadcast.redis_calls import redis_command, within
from litestar_sse.broadcast.redis_replay import entry_fields
from litestar_sse.broadcast.redis_scripts import _HELPERS, RedisKeys

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

    from litestar_sse.broadcast.redis_outage import Outage

__all__ = ("HISTORY", "RedisReads")

_T = TypeVar("_T")
_first: Final = itemgetter(0)
_LINE_BREAK: Final = re.compile(r"\r\n|\r|\n")

HISTORY: Final = (
    _HELPERS
    + """
-- KEYS: meta, trimmed and newest (hashes of earlier versions), then per topic: its stream
--       and its state
-- ARGV: candidate epoch, epoch of the id to read after ('': read from the oldest, no gap
--       checks), id to read after, epoch of the id to read up to ('': the newest), that id,
--       most entries per topic, then per topic: topic, max age ms (0: none), lifetime ms
--       (0: for ever)
-- Returns {epoch, head, status, gapped topic indexes (1-based), entries of the other topics}
local epoch = epoch_of(KEYS[1], ARGV[1])
local clock = redis.call('HMGET', KEYS[1], 'ms', 'n')
local head = (clock[1] or '0') .. '-' .. (clock[2] or '0')
local checked = ARGV[2] ~= ''
if (checked and ARGV[2] ~= epoch) or (ARGV[4] ~= '' and ARGV[4] ~= epoch) then
  return {epoch, head, 'epoch'}
end
local last = ARGV[3]
if newer(last, head) then return {epoch, head, 'future'} end
local upto = ARGV[5]
if upto == '' or newer(upto, head) then upto = head end
local count = tonumber(ARGV[6])
local now = now_ms()
local expire_now = math.max(now, tonumber(clock[1] or '0'))
local gaps, ranges = {}, {}
for j = 1, (#KEYS - 3) / 2 do
  local stream, state = KEYS[2 + 2 * j], KEYS[3 + 2 * j]
  local topic, lifetime = ARGV[3 * j + 4], tonumber(ARGV[3 * j + 6])
  local removed = expire(stream, tonumber(ARGV[3 * j + 5]), expire_now)
  if removed then note_trimmed(state, stream, removed) end
  local lost = checked and lost_upto(state, KEYS[2], KEYS[3], topic, stream, lifetime, now)
  if lost and newer(lost, last) then
    gaps[#gaps + 1] = j
  elseif newer(upto, last) then
    ranges[#ranges + 1] = redis.call('XRANGE', stream, '(' .. last, upto, 'COUNT', count)
  else
    ranges[#ranges + 1] = {}
  end
end
return {epoch, head, 'ok', gaps, ranges}
"""
)


class RedisReads(BroadcastBackend):
    """The reads of :class:`~litestar_sse.broadcast.RedisStreamBackend` (its base class)."""

    # Set by RedisStreamBackend.__init__.
    keys: RedisKeys
    _slots: contextlib.AbstractAsyncContextManager[Any]
    _watch_timeout: float
    _history_script: AsyncScript | None = None
    _outage: Outage

    @property
    def redis(self) -> Redis:
        """The client in use (after ``start``)."""
        raise NotImplementedError

    def _limits(self, topic: str) -> tuple[int, int, int]:
        raise NotImplementedError

    async def _checked(self, call: Awaitable[_T]) -> _T:
        """Await a call to Redis, noting whether Redis answered (see
        :class:`~.redis_outage.Outage`: one log line per outage)."""
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


def _event_and_data(fields: dict[bytes, bytes]) -> tuple[str | None, str]:
    event = fields.get(b"e")
    data = fields.get(b"d", b"").decode()
    if "\r" in data or "\n" in data:
        data = "\n".join(_LINE_BREAK.split(data))
    return (None if event is None else event.decode()), data
