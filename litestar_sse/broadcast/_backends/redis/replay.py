"""The replay of the Redis backend: ``XRANGE ... COUNT n`` pages, merged in id order.

A resume used to read every missed event of every topic in one script: 20 topics x 1,000
events of 2 KB stalled Redis for half a second and held 40 MB in the process for each client
resuming, read or not. Here each topic is read from its own cursor by one short script per
round trip, a share of the page's byte budget per topic (Redis cuts each topic's reply at
its share), which also tells whether the history dropped events past a cursor meanwhile; the
events go out in id order, each topic's next entries read as soon as it has none left in
hand. Redis is never busy for more than a page, and a client holds at most about a page.
"""

from __future__ import annotations

import heapq
from collections.abc import Awaitable, Callable
from typing import Any, Final

from litestar_sse.broadcast._backends.replay import Replay, ReplayPage
from litestar_sse.broadcast._events.ids import pack_redis_id

__all__ = ("RedisReplay", "entry_fields")

_FIRST_GUESS: Final = 4096
"""Bytes per event assumed before any was read."""

RunPage = Callable[[list[Any], list[Any]], Awaitable[list[Any]]]
"""Runs the REPLAY_PAGE script with ``keys`` and ``args``; the backend's, with its timeout."""


class RedisReplay(Replay):
    """Replays the entries of some topic streams after an id, up to the snapshot's head.

    Args:
        run_page: Runs one REPLAY_PAGE script call.
        keys: ``trimmed`` and ``newest`` hash keys.
        topics: ``(topic, (stream key, state key), lifetime in ms)`` of each topic with
            missed events.
        last_id: The id the client resumes after (``ms-n``).
        head: The newest stream id when the snapshot was taken.
        encode: Writes one event from its stream id and fields.
        read_count: Most entries read per topic and per round trip.
        head_id: The full id of the head (with the epoch).
    """

    __slots__ = (
        "_buffers",
        "_cursors",
        "_encode",
        "_head",
        "_heap",
        "_keys",
        "_lifetimes",
        "_live",
        "_mean",
        "_read_count",
        "_run_page",
        "_starved",
        "head_id",
    )

    def __init__(
        self,
        run_page: RunPage,
        keys: tuple[str, str],
        topics: list[tuple[str, tuple[str, str], int]],
        last_id: str,
        head: bytes,
        encode: Callable[[bytes, dict[bytes, bytes]], bytes],
        read_count: int,
        head_id: str,
    ) -> None:
        self._run_page = run_page
        self._keys = keys
        self._head = head
        self._encode = encode
        self._read_count = read_count
        self.head_id = head_id
        self._cursors: dict[str, bytes | str] = {topic: last_id for topic, _, _ in topics}
        self._live = {topic: keys for topic, keys, _ in topics}
        """Topics that may have more entries in Redis, with their stream and state keys."""
        self._lifetimes = {topic: lifetime for topic, _, lifetime in topics}
        self._starved = set(self._live)
        """Live topics with nothing in hand: read before any event goes out."""
        self._buffers: dict[str, list[tuple[int, bytes]]] = {topic: [] for topic, _, _ in topics}
        """Per topic, encoded events in hand (``(position, event)``), newest first."""
        self._heap: list[tuple[int, str]] = []
        """``(position, topic)`` of the oldest event in hand of each topic with some."""
        self._mean = float(_FIRST_GUESS)

    async def read(self, max_bytes: int) -> ReplayPage:
        """The next events in id order, within ``max_bytes``; one round trip to Redis when a
        topic must be read further before anything can go out."""
        events: list[bytes] = []
        lost: list[str] = []
        size = 0
        heap, buffers = self._heap, self._buffers
        while True:
            if self._starved:
                if events:
                    break  # what is in hand goes out; the next page reads further
                lost.extend(await self._fill(max_bytes))
                continue
            if not heap:
                break
            _, topic = heap[0]
            buffer = buffers[topic]
            chunk = buffer[-1][1]
            if events and size + len(chunk) > max_bytes:
                break
            buffer.pop()
            events.append(chunk)
            size += len(chunk)
            if buffer:
                heapq.heapreplace(heap, (buffer[-1][0], topic))
            else:
                heapq.heappop(heap)
                if topic in self._live:
                    self._starved.add(topic)
        return ReplayPage(events, tuple(lost), done=not heap and not self._starved)

    async def _fill(self, max_bytes: int) -> list[str]:
        """Read the next entries of the live topics with little in hand, within the page's
        bytes (Redis stops each topic's reply at its share); return the topics whose
        history lost entries past their cursor."""
        live = self._live
        share = max(1, max_bytes // len(live))
        count = max(1, min(self._read_count, int(2 * share / self._mean)))
        wanted = [topic for topic in live if len(self._buffers[topic]) < count]
        keys: list[Any] = [*self._keys]
        args: list[Any] = [self._head, share]
        for topic in wanted:
            keys += live[topic]
            args += (topic, self._cursors[topic], count - len(self._buffers[topic]))
            args.append(self._lifetimes[topic])
        reply = await self._run_page(keys, args)
        lost: list[str] = []
        read_bytes = read_events = 0
        for topic, answer in zip(wanted, reply, strict=True):
            self._starved.discard(topic)
            if not isinstance(answer, list):  # 0: the history dropped what was not replayed
                lost.append(topic)
                del live[topic]
                continue
            more, entries = answer
            if not more:
                del live[topic]  # read up to the head
            if not entries:
                continue
            buffer = self._buffers[topic]
            was_empty = not buffer
            fresh = [
                (pack_redis_id(stream_id), self._encode(stream_id, entry_fields(flat)))
                for stream_id, flat in entries
            ]
            self._cursors[topic] = entries[-1][0]
            read_events += len(fresh)
            read_bytes += sum(len(chunk) for _, chunk in fresh)
            fresh.reverse()
            buffer[:0] = fresh  # the newest first: events go out from the end
            if was_empty:
                heapq.heappush(self._heap, (buffer[-1][0], topic))
        if read_events:
            self._mean = max(64.0, (self._mean + read_bytes / read_events) / 2)
        return lost


def entry_fields(flat: Any) -> dict[bytes, bytes]:
    """The fields of a stream entry: a flat list (RESP2, as scripts return) or a dict."""
    if isinstance(flat, dict):
        return flat
    return dict(zip(flat[::2], flat[1::2], strict=True))
