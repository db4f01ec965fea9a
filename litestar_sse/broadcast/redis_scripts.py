"""The Lua scripts of :class:`~litestar_sse.broadcast.RedisStreamBackend`.

Keys, for a ``prefix`` of ``litestar_sse:``:

* ``litestar_sse:meta`` — hash: ``epoch`` (random, set once by whoever writes first), the
  clock ``ms``/``n`` of the newest event id, and for the change log: ``ll``, the newest id
  written to it, ``lt``, the newest id removed from it, and ``lx``, the newest id of an event
  missing from it (published by a version without the log).
* ``litestar_sse:topic:<topic>`` — one stream per topic.
* ``litestar_sse:state:<topic>`` — hash: ``t``, the id of the newest event removed from the
  topic's history, and ``n``, the id of its newest event (topics with a maximum age or an
  idle TTL, whose stream expires as a whole once all its events are too old, or once none
  came for the TTL). Such a topic's state expires too, :data:`STATE_GRACE_MS` after its
  stream: nothing of a topic stays in Redis once it expired. A resume from an id older
  than that is then reported as a gap (the topic may have had events), as the in-memory
  backend does for a topic it forgot.
* ``litestar_sse:trimmed``, ``litestar_sse:newest`` — hashes of topic -> id, where versions
  before the per-topic state kept ``t`` and ``n`` (for ever, hence the change): read as a
  fallback, emptied topic by topic as topics are published to, never written.
* ``litestar_sse:log`` — the change log: one entry per event, with the event's id and its
  topic (field ``t``), the newest :data:`CHANGE_LOG_LENGTH` kept; ``meta``'s ``lt`` is the id
  of the newest entry removed. Readers learn from it which topic streams to read.
* ``litestar_sse:idem:<n>:<topic>:<key>`` — the id of the event published to ``topic``
  (``n`` characters long) with idempotency ``key``, and the fingerprint of that event (its
  type and data), expiring after the backend's ``idempotency_window``.
* ``litestar_sse:wake:<token>`` — one tiny stream per process, written to wake its reader
  when it must start reading a new topic (expires an hour after the last wake).

Every event id comes from one clock shared by all topics: ``ms-n`` where ``ms`` is Redis'
``TIME`` in milliseconds (never going backwards) and ``n`` counts events within one
millisecond. Scripts run atomically, so ids are unique and ordered across all topic streams
in the order the events were published; that makes one id a resume cursor for any set of
topics. Trimming is exact (one entry per publish, typically), so the id of the newest removed
entry is known and a resume is either exact or reported as a gap, never silently short.
"""

from __future__ import annotations

from typing import Final

__all__ = (
    "BUMP_EPOCH",
    "CHANGE_LOG_LENGTH",
    "PUBLISH",
    "REPLAY_PAGE",
    "SNAPSHOT",
    "STATE_GRACE_MS",
    "RedisKeys",
)

CHANGE_LOG_LENGTH: Final = 100_000
"""Entries kept in the change log: how far behind a reader may fall before it must read
every stream it follows (a few MB in Redis at most: each entry holds an id and a topic)."""

STATE_GRACE_MS: Final = 1000
"""Milliseconds a topic's state outlives its stream (expiring topics only): the state expires
at the newest event's time plus the stream's lifetime plus this, by Redis' clock, so that
once it is gone every event of the topic is older than that horizon."""


class RedisKeys:
    """The names of the keys under one prefix."""

    __slots__ = (
        "idempotency_prefix",
        "log",
        "meta",
        "newest",
        "prefix",
        "state_prefix",
        "topic_prefix",
        "trimmed",
    )

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.meta = prefix + "meta"
        self.trimmed = prefix + "trimmed"
        self.newest = prefix + "newest"
        self.log = prefix + "log"
        self.idempotency_prefix = prefix + "idem:"
        self.topic_prefix = prefix + "topic:"
        self.state_prefix = prefix + "state:"

    def topic(self, topic: str) -> str:
        """The stream of ``topic``."""
        return self.topic_prefix + topic

    def state(self, topic: str) -> str:
        """The state of ``topic``: what its history lost (see the module)."""
        return self.state_prefix + topic

    def idempotency(self, topic: str, key: str) -> str:
        """Where the id of the event published to ``topic`` with idempotency ``key`` is
        remembered: a key belongs to its topic (the topic's length first, so that no two
        pairs share a name)."""
        return f"{self.idempotency_prefix}{len(topic)}:{topic}:{key}"

    def wake(self, token: str) -> str:
        """The stream one process' reader is woken through."""
        return f"{self.prefix}wake:{token}"


_HELPERS: Final = (
    """
local function epoch_of(meta, candidate)
  local epoch = redis.call('HGET', meta, 'epoch')
  if not epoch then
    epoch = candidate
    redis.call('HSET', meta, 'epoch', epoch)
  end
  return epoch
end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function newer(x, y)
  local xa, xb = string.match(x, '^(%d+)-(%d+)$')
  local ya, yb = string.match(y, '^(%d+)-(%d+)$')
  xa, xb, ya, yb = tonumber(xa), tonumber(xb), tonumber(ya), tonumber(yb)
  return xa > ya or (xa == ya and xb > yb)
end

local STATE_GRACE_MS = """
    + str(STATE_GRACE_MS)
    + """

-- Remove entries older than max_age ms; return the id of the newest removed, or false.
local function expire(stream, max_age, now)
  if max_age <= 0 then return false end
  local min_id = string.format('%d', now - max_age) .. '-0'
  local old = redis.call('XREVRANGE', stream, '(' .. min_id, '-', 'COUNT', 1)
  if #old == 0 then return false end
  redis.call('XTRIM', stream, 'MINID', min_id)
  return old[1][1]
end

-- The id of the newest event of a topic missing from its history, or false: what was
-- trimmed, or, when the stream expired as a whole, its newest event; once even the topic's
-- state expired, the horizon before which it may have had events. old_trimmed and
-- old_newest: the hashes of earlier versions (read only). lifetime: ms the stream lives
-- after its newest event (0: for ever).
local function lost_upto(state, old_trimmed, old_newest, topic, stream, lifetime, now)
  local trimmed = redis.call('HGET', state, 't')
  local old = redis.call('HGET', old_trimmed, topic)
  if old and ((not trimmed) or newer(old, trimmed)) then trimmed = old end
  if redis.call('EXISTS', stream) == 0 then
    local newest = redis.call('HGET', state, 'n') or redis.call('HGET', old_newest, topic)
    if newest then return newest end
    if lifetime > 0 then
      local horizon = math.max(0, now - lifetime - STATE_GRACE_MS + 1)
      return string.format('%d', horizon) .. '-0'
    end
  end
  return trimmed or false
end

-- Note that the history of a topic lost the events up to id (not in the stream any more).
local function note_trimmed(state, stream, id)
  redis.call('HSET', state, 't', id)
  if redis.call('PTTL', state) == -1 then
    -- a state made here for a stream of an earlier version: it expires with the stream
    local ttl = redis.call('PTTL', stream)
    if ttl > 0 then redis.call('PEXPIRE', state, ttl + STATE_GRACE_MS) end
  end
end
"""
)

PUBLISH: Final = (
    _HELPERS
    + """
-- KEYS: meta, trimmed and newest (hashes of earlier versions), stream, log, state,
--       idempotency key (when ARGV[6] > 0)
-- ARGV: candidate epoch, max events (-1: none), max age ms (0: none), topic, log length,
--       idempotency window ms (0: no key), ms the stream lives after this event (0: for
--       ever), fingerprint of the event (hex; '' without a key), fields...
-- Returns {epoch, id}, or {'', full id of the event} when the idempotency key was used for
-- the same event, or {'!', full id} when it was used for another one (nothing stored)
local idempotency_ms = tonumber(ARGV[6])
if idempotency_ms > 0 then
  local stored = redis.call('GET', KEYS[7])
  if stored then
    local first, print = string.match(stored, '^(%S+) (%x+)$')
    if not first then return {'', stored} end
    if print ~= ARGV[8] then return {'!', first} end
    return {'', first}
  end
end
local epoch = epoch_of(KEYS[1], ARGV[1])
local clock = redis.call('HMGET', KEYS[1], 'ms', 'n', 'll')
if clock[1] and clock[3] ~= clock[1] .. '-' .. clock[2] then
  -- the previous event is not in the log (published by an older version): readers must
  -- read every stream up to it
  redis.call('HSET', KEYS[1], 'lx', clock[1] .. '-' .. clock[2])
end
local ms, n = tonumber(clock[1]) or 0, tonumber(clock[2]) or 0
local now = now_ms()
if now > ms then ms, n = now, 0 else n = n + 1 end
local ms_text, n_text = string.format('%d', ms), string.format('%d', n)
local id = ms_text .. '-' .. n_text
redis.call('HSET', KEYS[1], 'ms', ms_text, 'n', n_text, 'll', id)
local topic, state, lifetime = ARGV[4], KEYS[6], tonumber(ARGV[7])
if lifetime > 0 and redis.call('EXISTS', KEYS[3]) == 0 then
  -- the stream expired as a whole (or never was): all of it counts as trimmed
  local expired = lost_upto(state, KEYS[2], KEYS[4], topic, KEYS[3], lifetime, now)
  if expired then redis.call('HSET', state, 't', expired) end
end
local old = redis.call('HGET', KEYS[2], topic)
if old then  -- kept by an earlier version: moved into the topic's state
  local trimmed = redis.call('HGET', state, 't')
  if (not trimmed) or newer(old, trimmed) then redis.call('HSET', state, 't', old) end
  redis.call('HDEL', KEYS[2], topic)
end
redis.call('HDEL', KEYS[4], topic)
redis.call('XADD', KEYS[3], id, unpack(ARGV, 9))
if idempotency_ms > 0 then
  redis.call('SET', KEYS[7], epoch .. '-' .. id .. ' ' .. ARGV[8], 'PX', idempotency_ms)
end
redis.call('XADD', KEYS[5], id, 't', topic)
if redis.call('XLEN', KEYS[5]) > tonumber(ARGV[5]) then
  local oldest = redis.call('XRANGE', KEYS[5], '-', '+', 'COUNT', 1)[1][1]
  redis.call('XDEL', KEYS[5], oldest)
  redis.call('HSET', KEYS[1], 'lt', oldest)
end

local removed = expire(KEYS[3], tonumber(ARGV[3]), ms)
local max_events = tonumber(ARGV[2])
if max_events >= 0 then
  local excess = redis.call('XLEN', KEYS[3]) - max_events
  if excess > 0 then
    local trimmed = redis.call('XRANGE', KEYS[3], '-', '+', 'COUNT', excess)
    removed = trimmed[#trimmed][1]
    redis.call('XTRIM', KEYS[3], 'MAXLEN', max_events)
  end
end
if removed then redis.call('HSET', state, 't', removed) end
if lifetime > 0 then
  -- Once no event is younger than max_age, or none came for idle_ttl, the whole stream
  -- goes; the newest id is kept so that a resume from before it is reported as a gap,
  -- and the state goes too, a little later (by the clock of the ids, which may run ahead
  -- of Redis' own: once it is gone, every event of the topic is older than the horizon).
  redis.call('HSET', state, 'n', id)
  redis.call('PEXPIRE', KEYS[3], lifetime)
  redis.call('PEXPIREAT', state, ms + lifetime + STATE_GRACE_MS)
else
  redis.call('PERSIST', state)
end
return {epoch, id}
"""
)

SNAPSHOT: Final = (
    _HELPERS
    + """
-- KEYS: meta, trimmed and newest (hashes of earlier versions), then per topic: its stream
--       and its state
-- ARGV: candidate epoch, epoch of the last id ('' when none), last id, then per topic:
--       topic, max age ms (0: none), lifetime ms (0: for ever)
-- Returns {epoch, head, status, gapped topic indexes, indexes of topics with missed events}
-- (1-based). The events themselves are read page by page with REPLAY_PAGE: this script
-- costs a few commands per topic, whatever the client missed.
local epoch = epoch_of(KEYS[1], ARGV[1])
local clock = redis.call('HMGET', KEYS[1], 'ms', 'n')
local head = (clock[1] or '0') .. '-' .. (clock[2] or '0')
if ARGV[2] ~= epoch then return {epoch, head, 'epoch'} end
local last = ARGV[3]
if newer(last, head) then return {epoch, head, 'future'} end
local now = now_ms()
local expire_now = math.max(now, tonumber(clock[1] or '0'))
local gaps, missed = {}, {}
for j = 1, (#KEYS - 3) / 2 do
  local stream, state = KEYS[2 + 2 * j], KEYS[3 + 2 * j]
  local topic, lifetime = ARGV[1 + 3 * j], tonumber(ARGV[3 + 3 * j])
  local removed = expire(stream, tonumber(ARGV[2 + 3 * j]), expire_now)
  if removed then note_trimmed(state, stream, removed) end
  local lost = lost_upto(state, KEYS[2], KEYS[3], topic, stream, lifetime, now)
  if lost and newer(lost, last) then
    gaps[#gaps + 1] = j
  elseif #redis.call('XRANGE', stream, '(' .. last, head, 'COUNT', 1) > 0 then
    missed[#missed + 1] = j
  end
end
return {epoch, head, 'ok', gaps, missed}
"""
)

REPLAY_PAGE: Final = (
    _HELPERS
    + """
-- KEYS: trimmed and newest (hashes of earlier versions), then per topic: its stream and its
--       state
-- ARGV: head id, bytes per topic, then per topic: topic, cursor (the last id replayed),
--       count, lifetime ms (0: for ever)
-- Returns per topic: 0 when events after the cursor left the history (a gap), else
-- {more, entries}: up to count entries after the cursor and at or before the head, no more
-- than the bytes per topic (at least one), and more = 1 when the stream may hold others
local head, budget = ARGV[1], tonumber(ARGV[2])
local now = now_ms()
local out = {}
for j = 1, (#KEYS - 2) / 2 do
  local stream, state = KEYS[1 + 2 * j], KEYS[2 + 2 * j]
  local topic, cursor = ARGV[4 * j - 1], ARGV[4 * j]
  local count, lifetime = tonumber(ARGV[4 * j + 1]), tonumber(ARGV[4 * j + 2])
  local lost = lost_upto(state, KEYS[1], KEYS[2], topic, stream, lifetime, now)
  if lost and newer(lost, cursor) then
    out[#out + 1] = 0
  else
    local entries = redis.call('XRANGE', stream, '(' .. cursor, head, 'COUNT', count)
    local kept, size = {}, 0
    for _, entry in ipairs(entries) do
      local bytes = #entry[1]
      for _, value in ipairs(entry[2]) do bytes = bytes + #value end
      if #kept > 0 and size + bytes > budget then break end
      kept[#kept + 1] = entry
      size = size + bytes
    end
    local more = (#kept < #entries or #entries == count) and 1 or 0
    out[#out + 1] = {more, kept}
  end
end
return out
"""
)

BUMP_EPOCH: Final = """
-- The history this process read from is gone (wiped, or it lost writes): start a new epoch
-- unless another process already did.
-- KEYS: meta; ARGV: the epoch that is over ('' if none was known), candidate epoch
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if (not epoch) or epoch == ARGV[1] then
  redis.call('HSET', KEYS[1], 'epoch', ARGV[2])
  return ARGV[2]
end
return epoch
"""
