"""Reading Redis replies for the :class:`~.reader.StreamReader`, without I/O.

The reader learns which topics have new events from the *change log*, one stream that every
publish appends a small entry to (the event's id and its topic), so a wake costs the same
whether the process follows ten topics or a million: it reads the log, then the streams of
the topics it follows that the log names, and those only. These functions turn the replies
into what to read and what to deliver.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from operator import itemgetter
from typing import Any, Final

from litestar_sse.broadcast._events.ids import pack_redis_id

__all__ = (
    "Entry",
    "LogEntry",
    "collect_entries",
    "in_order_until",
    "stream_items",
    "topics_in_log",
)

Entry = tuple[int, str, bytes, dict[bytes, bytes]]
"""``(position, topic, stream id, fields)`` of one event read from a topic stream."""

LogEntry = tuple[bytes, dict[bytes, bytes]]
"""``(stream id, {b"t": topic})`` of one change-log entry."""

_first: Final = itemgetter(0)


def stream_items(reply: Any) -> Iterable[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]]:
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


def topics_in_log(
    log: list[LogEntry], topic_prefix: bytes, topic_of_key: Mapping[bytes, str]
) -> dict[bytes, int]:
    """The stream keys of the followed topics that ``log`` names, with how many entries it
    lists for each (an upper bound of what to read from each)."""
    counts: dict[bytes, int] = {}
    for _, fields in log:
        key = topic_prefix + fields.get(b"t", b"")
        if key in topic_of_key:
            counts[key] = counts.get(key, 0) + 1
    return counts


def collect_entries(
    reply: Any,
    topic_of_key: Mapping[bytes, str],
    read_count: int,
    into: list[Entry],
) -> int | None:
    """Add the entries of an XREAD of topic streams to ``into``; return the position up to
    which they are complete, or ``None`` when no stream may hold more.

    A stream that gave ``read_count`` entries may hold more: nothing newer than its last
    entry can go out from the other streams until it has been read further.
    """
    full_until: int | None = None
    for key, items in stream_items(reply):
        topic = topic_of_key.get(key)
        if topic is None or not items:
            continue
        if len(items) >= read_count:
            last = pack_redis_id(items[-1][0])
            full_until = last if full_until is None else min(full_until, last)
        for stream_id, fields in items:
            into.append((pack_redis_id(stream_id), topic, stream_id, fields))
    return full_until


def in_order_until(entries: list[Entry], until: int) -> list[Entry]:
    """``entries`` at or below position ``until``, in position order."""
    entries.sort(key=_first)
    if entries and entries[-1][0] > until:
        entries = [entry for entry in entries if entry[0] <= until]
    return entries
