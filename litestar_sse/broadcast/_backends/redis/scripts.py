"""The keys and Lua scripts of :class:`~litestar_sse.broadcast.RedisStreamBackend`.

The scripts are ``.lua`` files next to this module (package data).

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

from importlib import resources
from typing import Final

__all__ = (
    "BUMP_EPOCH",
    "CHANGE_LOG_LENGTH",
    "HISTORY",
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


def _lua(name: str) -> str:
    """The script ``name``, shipped next to this module as package data."""
    return (resources.files(__package__) / name).read_text(encoding="utf-8")


_HELPERS: Final = "\n" + _lua("helpers.lua").replace("__STATE_GRACE_MS__", str(STATE_GRACE_MS))
"""Functions every script but ``BUMP_EPOCH`` starts with (``helpers.lua``)."""

PUBLISH: Final = _HELPERS + _lua("publish.lua")
"""Publish one event: the next id, the stream, its trim, the change log, an idempotency key."""

SNAPSHOT: Final = _HELPERS + _lua("snapshot.lua")
"""Where a subscription starts: the epoch, the newest id, the gap checks of a resume."""

REPLAY_PAGE: Final = _HELPERS + _lua("replay_page.lua")
"""One page of a resume's replay: ``XRANGE ... COUNT n`` per topic."""

HISTORY: Final = _HELPERS + _lua("history.lua")
"""One page of ``read_history``: the epoch, the gap checks and the entries, atomically."""

BUMP_EPOCH: Final = "\n" + _lua("bump_epoch.lua")
"""Start a new epoch unless another process already did."""
