"""``Subscription``: one subscriber of the fan-out, an async iterator of its events' bytes
(or, for a typed subscription, a reader of the same events as values: :meth:`next_values`).

It holds a cursor per topic into the topics' rings (:mod:`~litestar_sse.broadcast._hub.feeds`),
the replay it sends first (:mod:`~litestar_sse.broadcast._hub.backlog`), and the guard that
watches its authorization while it is read, and how it takes its batches and meets its limits
(the pure functions of :mod:`~litestar_sse.broadcast._hub.limits`). Made by
:meth:`~.fanout.FanOut.open`.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any, Final, Protocol

from litestar_sse._message import RawEvent
from litestar_sse.asgi import _runtime as runtime
from litestar_sse.broadcast._backends.base import BackendUnavailableError
from litestar_sse.broadcast._events.values import Gap
from litestar_sse.broadcast._hub.backlog import REPLAY_PAGE_BYTES, Backlog
from litestar_sse.broadcast._hub.feeds import Inbox
from litestar_sse.broadcast._hub.limits import Held, Limits, drop_to_limits, over_limit, take_batch

if TYPE_CHECKING:
    from litestar_sse.asgi._sources import Push
    from litestar_sse.broadcast._backends.base import Snapshot
    from litestar_sse.broadcast._events.values import BroadcastMessage, HistoryItem
    from litestar_sse.broadcast._hub.counters import HubCounters
    from litestar_sse.broadcast._hub.feeds import TopicFeed

__all__ = ("Guard", "Hub", "Subscription", "WireChunks")

logger: Final = logging.getLogger("litestar_sse.broadcast")


class Hub(Limits, Protocol):
    """What a subscription needs of the fan-out it belongs to
    (:class:`~litestar_sse.broadcast._hub.fanout.FanOut`): its limits, and to be told when it
    is over. (Its counters are handed to the subscription on their own.)"""

    def release(
        self,
        feeds: tuple[TopicFeed, ...],
        inbox: Inbox | None,
        held: Held | None = None,
        values: bool = False,
    ) -> None:
        """Forget one subscriber of ``feeds``, and what it ``held`` of them (``values``: it
        read values)."""

    def drop_sending(self, held: Held) -> None:
        """The subscriber's stream ended: the chunk it was writing is not queued any more."""


def _future_factory() -> Callable[[], Any]:
    """What makes a future of the running loop: asyncio's own ``create_future``, looked up
    once (trio: :func:`~litestar_sse.asgi._runtime.create_future`)."""
    try:
        return asyncio.get_running_loop().create_future
    except RuntimeError:
        return runtime.create_future


class Guard(Protocol):
    """What watches a subscription (its authorization's expiry and re-checks): started when
    it is given to the subscription, cancelled when the subscription ends."""

    def start(self, subscription: Subscription) -> None:
        """Start watching ``subscription``."""

    def cancel(self) -> None:
        """Stop watching: the subscription ended."""


class Subscription:
    """One subscriber: an async iterator of :class:`~litestar_sse.RawEvent` chunks.

    Each chunk holds the events that were waiting, joined up to 64 KiB, or one larger event.
    Iterate it as the content of a :class:`~litestar_sse.ServerSentEvent`, or directly. Served
    as a stream on asyncio, it hands its chunks to the stream's sink while the stream waits
    (:meth:`push`), so an idle stream's task is not woken per event. A
    resuming subscription first sends the events its client missed, read a page at a time.
    The iteration ends when the broadcaster closes, when the backend lost its history (after
    a final gap event) or could not be reached for the replay, when the subscriber was too
    slow under the ``disconnect`` policy, or when its authorization ended (:meth:`revoke`,
    after the ``unauthorized_event``). :meth:`close` (or ``aclose``, or leaving
    ``async with``) unsubscribes; so does dropping the last reference to it.

    Attributes:
        topics: The topics subscribed to.
        resumed_from: The id after which this subscription's events start.
        gap: Why the subscriber missed events before it started (``"invalid"``, ``"epoch"``,
            ``"retention"``), or ``None`` when it resumed exactly (or did not resume). It
            becomes ``"retention"`` if the history loses events while they are replayed.
        gap_topics: The topics whose missed events could not be replayed.
    """

    __slots__ = (
        "__weakref__",
        "_after",
        "_backlog",
        "_closed",
        "_counters",
        "_cursors",
        "_fanout",
        "_feed",
        "_feeds",
        "_final",
        "_finalizer",
        "_future",
        "_guard",
        "_handoff",
        "_held",
        "_inbox",
        "_new_future",
        "_push",
        "_reads_values",
        "_resumed",
        "_sending_events",
        "_slot",
        "_taken",
        "_unsending",
        "gap",
        "gap_topics",
        "on_close",
        "on_overflow",
        "on_revoke",
        "on_start",
        "resumed_from",
        "revoked",
        "topics",
    )

    _fanout: Hub

    def __init__(
        self,
        fanout: Hub,
        feeds: tuple[TopicFeed, ...],
        counters: HubCounters,
        *,
        values: bool = False,
    ) -> None:
        self._fanout = fanout
        self._counters = counters
        self._feeds = feeds
        self._feed = feeds[0] if len(feeds) == 1 else None
        """The one topic of a single-topic subscription (``None`` with several)."""
        self._cursors = [feed.head for feed in feeds]
        self._held = Held([feed.total for feed in feeds])
        # Several topics: an inbox the topics note their news in, and each topic's cursor slot.
        self._inbox = Inbox() if len(feeds) > 1 else None
        self._slot = {feed: index for index, feed in enumerate(feeds)} if len(feeds) > 1 else None
        self._future: asyncio.Future[None] | None = None
        self._new_future: Callable[[], Any] | None = None
        """Makes the future of a wait: the running loop's (found at the first wait)."""
        self._push: Push | None = None
        """The stream's sink for chunks pushed while it waits (see :meth:`push_to`)."""
        self._handoff: bytes | Awaitable[None] | None = None
        """What a push left to the stream's task: a chunk to yield, or a send to finish."""
        self._after: int | None = None
        self._backlog: Backlog | None = None
        self._sending_events = 0
        """Events of the chunk being written (its bytes: ``Held.sending``)."""
        self._closed = False
        self._final: bytes | None = None
        self._resumed = False
        self._reads_values = values
        """Its topics keep each event's value for it (``FanOut.open(values=True)``)."""
        self._taken: list[BroadcastMessage | Gap | None] | None = None
        """While :meth:`next_values` takes: where the values taken go instead of bytes."""
        self._finalizer = weakref.finalize(
            self, fanout.release, feeds, self._inbox, self._held, values
        )
        for feed in feeds:  # from now on, every event of these topics is kept for it
            feed.subscriptions.add(self)
            if self._inbox is not None:
                feed.inboxes[self._inbox] = None
        self._finalizer.atexit = False
        # apart: a subscriber ended for being slow may still be writing its last chunk
        self._unsending = weakref.finalize(self, fanout.drop_sending, self._held)
        self._unsending.atexit = False
        self.topics = tuple(feed.name for feed in feeds)
        self.resumed_from = ""
        self.gap: str | None = None
        self.gap_topics: tuple[str, ...] = ()
        self.revoked: str | None = None
        """Why its authorization ended it (``"expired"``, ``"revoked"``), or ``None``."""
        self._guard: Guard | None = None
        self.on_overflow: Callable[[], None] | None = None
        """Called when the ``disconnect`` policy drops this subscriber (e.g. to cut its
        stream while it is stuck in a send)."""
        self.on_start: Callable[[], None] | None = None
        """Called once, when the subscription is first iterated (``aiter``): when its stream
        starts, which a stream refused or stopped before it starts never does."""
        self.on_close: Callable[[], None] | None = None
        """Called once, by :meth:`close` (its stream ended)."""
        self.on_revoke: Callable[[bytes], None] | None = None
        """Called with the closing event when :meth:`revoke` ends this subscription (e.g. to
        stop its stream at once, with that event last)."""

    def guard(self, guard: Guard) -> None:
        """Have ``guard`` watch this subscription from now to its end (the broadcaster's
        authorization watch); call it on the event loop, once, before it is read."""
        if self._guard is not None:
            raise RuntimeError("This subscription already has a guard")
        if self._closed:
            return
        self._guard = guard
        guard.start(self)

    def prime(self, snapshot: Snapshot, *, resumed: bool = False) -> None:
        """Send the replay (and gap event) of ``snapshot`` ahead of live events.

        The replay is read when the subscription is iterated, a page at a time. ``resumed``:
        the subscriber resumed from an id (counted when the subscription starts).
        """
        self._resumed = resumed
        self.resumed_from = snapshot.resumed_from
        self.gap = snapshot.gap
        self.gap_topics = snapshot.gap_topics
        self._after = snapshot.live_after
        if snapshot.history or snapshot.replay is not None or snapshot.gap is not None:
            page_bytes = min(REPLAY_PAGE_BYTES, self._fanout.max_queue_bytes)
            self._backlog = Backlog(snapshot, self._fanout.format, page_bytes)

    # -- iteration ---------------------------------------------------------------------------

    def __aiter__(self) -> Subscription:
        if self._resumed:  # a resume served: its stream started
            self._resumed = False
            self._counters.resumes += 1
        on_start = self.on_start
        if on_start is not None:
            self.on_start = None
            try:
                on_start()
            except Exception:
                logger.exception("on_start of a broadcast subscription failed")
        return self

    async def __anext__(self) -> RawEvent:
        return RawEvent(await self.next_chunk())

    def wire_chunks(self) -> WireChunks:
        """This subscription as a source of wire bytes: each item is a chunk of whole
        events, to be sent as it is (what a :class:`~litestar_sse.ServerSentEvent` streams
        instead of the :class:`~litestar_sse.RawEvent` items)."""
        return WireChunks(self)

    async def next_chunk(self) -> bytes:
        """The next chunk of whole events' bytes (the items of :meth:`wire_chunks`).

        Raises:
            StopAsyncIteration: the subscription ended.
        """
        self._sent()
        if self._backlog is not None:
            body = await self._take_backlog()
            if body is not None:
                return body
        feed = self._feed
        while True:
            # (One topic: nothing new is seen here, without a call; it is the common case
            # when a stream comes back after a send.)
            if feed is None or self._cursors[0] < feed.base + len(feed.chunks):
                body = self._collect()
                if body is not None:
                    return body
            if self._closed:
                final, self._final = self._final, None
                if final is not None:  # revoke's closing, or the epoch gap of FanOut.reset
                    if self.revoked is None:
                        self._counters.gaps["epoch"] += 1
                        if self._taken is not None:
                            self._taken.append(Gap("epoch", self.topics))
                    return final
                raise StopAsyncIteration
            # Idle: one future per wait, resolved by the next append to any of our topics.
            new_future = self._new_future
            if new_future is None:
                new_future = self._new_future = _future_factory()
            self._future = future = new_future()
            if feed is None:
                assert self._inbox is not None
                self._inbox.future = future  # registered with every topic already
                await future
                continue
            if self._push is not None:
                # Its stream takes pushed chunks: this one future is all it waits on while
                # the topic's passes send its events (see push).
                feed.call_soon = asyncio.get_running_loop().call_soon
                feed.pushers[self] = None
                try:
                    await future
                finally:
                    feed.pushers.pop(self, None)
                handoff = self._handoff
                if handoff is not None:
                    self._handoff = None
                    if type(handoff) is bytes:
                        return handoff  # for the stream to send itself
                    await handoff  # type: ignore[misc]  # a pushed send, finished here
                    self._sent()
                continue
            # A topic holds only futures still pending: one this wait leaves (cancelled, or
            # on trio left unresolved) is taken out of its topic at once.
            feed.waiters[future] = None
            try:
                await future
            except BaseException:
                feed.waiters.pop(future, None)
                raise

    def _sent(self) -> None:
        """The stream wrote the chunk it took last: nothing of it is in flight any more."""
        held = self._held
        if held.sending:
            if held.writing:
                self._counters.sending_bytes -= held.sending
            held.sending = 0
        self._sending_events = 0

    def push_to(self, push: Push) -> None:
        """Have the topic's passes hand this subscription's chunks to ``push`` (its stream's
        sink, see :class:`~litestar_sse.asgi._sources.PushSource`) while it waits, instead of
        waking it for each. A single-topic byte reader only; others are woken as before.

        :meta private: (the stream's, through :meth:`wire_chunks`)
        """
        if self._feed is not None and not self._reads_values:
            self._push = push

    def push(self) -> None:
        """Hand the events not taken yet to the stream's sink (a topic's pass, while this
        subscription waits): sent there, the task sleeps on; otherwise the task is woken
        with what the sink gave back (a chunk to send itself, a send to finish).

        :meta private: (the hub's, not for users)
        """
        feed = self._feed
        assert feed is not None
        chunks = feed.chunks
        size = len(chunks)
        cursor = self._cursors[0]
        start = cursor - feed.base
        if start >= size or self._closed:
            return
        push = self._push
        assert push is not None
        if start == size - 1 and self._after is None:
            # One event, the subscriber in step with the topic (the rule at a steady rate):
            # _collect's work without its checks, and nothing noted as in flight unless the
            # stream could not send it at once.
            body = chunks[start]
            self._cursors[0] = cursor + 1
            self._counters.delivered += 1
            offsets = self._held.offsets
            feed.taken += feed.total - offsets[0]
            offsets[0] = feed.total
            outcome = push(body)
            if outcome is None:
                return
            self._handing(body, 1)
        else:
            collected = self._collect()
            if collected is None:  # the seam with the replay, or slow: ended (and woken)
                return
            outcome = push(collected)
            if outcome is None:
                self._sent()
                return
        feed.pushers.pop(self, None)
        self._handoff = outcome
        self.wake()

    async def next_values(self) -> list[HistoryItem]:
        """The next events as values, in the order :meth:`next_chunk` would send them: the
        same batches within the same limits, counted the same, each event's
        :class:`~litestar_sse.broadcast.BroadcastMessage` made once when it arrived and
        shared (nothing parsed back from bytes). A slow reader's skip under the
        ``drop_oldest`` policy is a ``Gap("overflow", dropped=n)``, the backend's loss of its
        history a last ``Gap("epoch", topics)``. Empty when the subscription ended by its
        authorization (:attr:`revoked`): its closing event has no value.

        For a subscription opened with ``FanOut.open(..., values=True)`` and not primed with
        a replay (a typed subscription reads its backlog from history, as values).

        Raises:
            StopAsyncIteration: the subscription ended.
            RuntimeError: opened without ``values``, or it has a replay to send first.
        """
        if not self._reads_values:
            raise RuntimeError(
                "This subscription keeps no values: open it with FanOut.open(topics, values=True)"
            )
        if self._backlog is not None:
            raise RuntimeError(
                "This subscription sends a replay first, as bytes: read it with next_chunk()"
            )
        taken: list[BroadcastMessage | Gap | None] = []
        self._taken = taken
        try:
            await self.next_chunk()
        finally:
            self._taken = None
        # (A value is None only for an event that came while its topic had no value reader,
        # and a value reader starts after every such event: none is expected here.)
        return [item for item in taken if item is not None]

    def _take_values(self, feed: TopicFeed, start: int, end: int) -> int:
        """Take the values of the events ``start:end`` (relative) of ``feed``; return the
        bytes they stand for."""
        assert self._taken is not None
        self._taken.extend(feed.values[start:end])
        return feed.span_bytes(start, end)

    async def _take_backlog(self) -> bytes | None:
        """The next send of the backlog, counted; ``None`` once it is over, or when the
        backend cannot be reached for it (the subscription then ends)."""
        backlog = self._backlog
        assert backlog is not None
        counters = self._counters
        try:
            taken = await backlog.take(self._fanout.join_bytes)
        except BackendUnavailableError as exc:
            # The client resumes from the last event it got once the backend is back.
            counters.errors["replay"] += 1
            logger.warning("Broadcast replay interrupted (%s); the stream ends", exc.detail)
            self.end(None)
            return None
        if taken is None:
            self._backlog = None
            return None
        body, count = taken
        if count == 0:  # the gap event, possibly of events lost during the replay
            self.gap, self.gap_topics = backlog.gap, tuple(backlog.gap_topics)
            counters.note_gap(str(backlog.gap))
        counters.replayed += count
        counters.delivered += count
        return self._handing(body, count)

    def _collect(self) -> bytes | None:
        """Take the next chunk queued for this subscriber (or ``None``)."""
        feed = self._feed
        if feed is None:
            return self._collect_many()
        chunks = feed.chunks
        size = len(chunks)
        base = feed.base
        cursor = self._cursors[0]
        start = cursor - base  # relative; negative when trimmed events were still due
        if start >= size:
            return None
        # Inlined (no property, no helper call): this runs twice per send.
        fanout = self._fanout
        counters = self._counters
        lag = size - start
        if lag > 1:
            if lag > fanout.max_queue or start < 0:
                return self._slow([(feed, cursor)])
            queued = feed.total - feed.starts[start]
            if queued > fanout.max_queue_bytes:
                return self._slow([(feed, cursor)])
            if queued > counters.queue_peak:
                counters.queue_peak = queued
        if self._after is not None:
            start = self._skip_replayed(feed, start, self._after)
            if start == size:
                self._move(0, base + size)
                return None
        if self._taken is not None:  # values instead: the same batch, nothing joined
            end = size if start == size - 1 else feed.batch_end(start, fanout.join_bytes)
            body = b""
        elif start == size - 1:  # one event: the common case at a steady rate
            end = size
            body = chunks[start]
        else:
            join_bytes = fanout.join_bytes
            end = (
                size
                if feed.total - feed.starts[start] <= join_bytes
                else feed.batch_end(start, join_bytes)
            )
            body = chunks[start] if end - start == 1 else feed.joined(start, end)
        self._cursors[0] = base + end
        count = end - start
        counters.delivered += count
        held = self._held
        if not self._closed:  # _move, inlined: until the fan-out took its counts back
            offset = feed.total if end == size else feed.starts[end]
            feed.taken += offset - held.offsets[0]
            held.offsets[0] = offset
        # _handing, inlined
        self._sending_events = count
        sent = len(body) if self._taken is None else self._take_values(feed, start, end)
        if sent > fanout.join_bytes:
            sent = fanout.join_bytes
        if held.writing:
            counters.sending_bytes += sent - held.sending
        held.sending = sent
        return body

    def _skip_replayed(self, feed: TopicFeed, start: int, after: int) -> int:
        # Live events that the replay (or the gap) already covered: the seam between history
        # and live. Positions only grow, so the first one past the seam ends the check.
        positions = feed.positions
        end = len(positions)
        while start < end and positions[start] <= after:
            start += 1
        if start < end:
            self._after = None
        return start

    # -- ending ------------------------------------------------------------------------------

    def _overflow(self, lag: int) -> None:
        counters = self._counters
        counters.disconnected += 1
        counters.dropped += lag
        self._move_to_heads()
        self._backlog = None
        self.end(None)
        logger.info("Broadcast subscriber %d events behind: disconnected", lag)
        if self.on_overflow is not None:
            try:
                self.on_overflow()
            except Exception:
                logger.exception("on_overflow of a broadcast subscription failed")

    def end(self, final: bytes | None) -> None:
        """End once what is queued was sent, then ``final`` (an event, or ``None``); a replay
        still being read stops where it is. Called by the fan-out, and by :meth:`close`.

        :meta private: (the hub's, not for users)
        """
        if self._closed:
            return
        self._closed = True
        if self._guard is not None:
            self._guard.cancel()
        self._final = final
        if self._backlog is not None:
            # A replay cut short: no live event after it either, or the client's Last-Event-ID
            # would skip what was not replayed. It resumes from the last event it got.
            self._backlog = None
            self._move_to_heads()
        future = self._future
        if future is not None:
            for feed in self._feeds:
                feed.waiters.pop(future, None)
                feed.pushers.pop(self, None)
        self._finalizer()
        self.wake()

    def revoke(self, reason: str, closing: bytes, *, cut: bool = True) -> None:
        """End now because its authorization ended (``reason``: ``"expired"``, ``"revoked"``).

        Nothing queued or left to replay is sent any more: ``closing`` (the broadcaster's
        ``unauthorized_event``) is the last chunk the iteration yields. With ``cut``,
        :attr:`on_revoke` is called with ``closing`` too (a stream stops at once).
        """
        if self._closed:
            return
        self.revoked = reason
        self._backlog = None
        self._move_to_heads()
        self.end(closing)
        on_revoke = self.on_revoke
        if cut and on_revoke is not None:
            self.on_revoke = None
            try:
                on_revoke(closing)
            except Exception:
                logger.exception("on_revoke of a broadcast subscription failed")

    @property
    def closed(self) -> bool:
        """True once the subscription receives no more live events."""
        return self._closed

    def close(self) -> None:
        """Unsubscribe now; anything not yet taken is discarded."""
        self._backlog = None
        self._move_to_heads()
        self._sending_events = 0  # nothing in flight any more
        self._unsending()
        self.end(None)
        on_close, self.on_close = self.on_close, None
        if on_close is not None:
            on_close()

    async def aclose(self) -> None:
        """Unsubscribe (the ASGI layer calls this when the stream ends)."""
        self.close()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        self.close()

    def _collect_many(self) -> bytes | None:
        # Only the topics that noted news in the inbox: every other one is up to date.
        inbox = self._inbox
        assert inbox is not None
        assert self._slot is not None
        if not inbox.ready:
            return None
        fanout = self._fanout
        cursors, slot = self._cursors, self._slot
        ready = [feed for feed in inbox.ready if feed.head > cursors[slot[feed]]]
        pending = self._pending(ready)
        if over_limit(pending, fanout.max_queue, fanout.max_queue_bytes):
            return self._slow(pending)
        self._note_queued(pending)
        found: list[tuple[TopicFeed, int]] = []
        after = self._after  # for every topic: the first past the seam clears it
        for feed in ready:
            start = cursors[slot[feed]] - feed.base
            if after is not None:
                start = self._skip_replayed(feed, start, after)
                self._move(slot[feed], feed.base + start)
            if start < len(feed.chunks):
                found.append((feed, start))
        body, count, size = None, 0, None
        if found:
            taken = self._taken
            body, count, ends = take_batch(found, fanout.join_bytes, taken)
            if taken is not None:  # values: the bytes they stand for, for the limits
                size = sum(
                    feed.span_bytes(start, end)
                    for (feed, start), end in zip(found, ends, strict=True)
                )
            for (feed, _), end in zip(found, ends, strict=True):
                self._move(slot[feed], feed.base + end)
        for feed in list(inbox.ready):
            if cursors[slot[feed]] >= feed.head:
                # up to date with it again: it notes its next event in the inbox
                del inbox.ready[feed]
                feed.inboxes[inbox] = None
        if body is None:
            return None
        self._counters.delivered += count
        return self._handing(body, count, size)

    def wake(self) -> None:
        """Wake this subscriber if it waits for an event.

        :meta private: (the hub's, not for users)
        """
        future = self._future
        if future is not None and not future.done():
            future.set_result(None)

    def check_lag(self, feed: TopicFeed, head: int) -> None:
        """Disconnect this subscriber if it fell too far behind ``feed`` (whose head is
        ``head``): called by the feed when it trims, under the ``disconnect`` policy.

        :meta private: (the hub's, not for users)
        """
        if self._closed:
            return
        # The topics with news (and this one); the others are up to date.
        pending = self._pending({**self._inbox.ready, feed: None} if self._inbox else [feed])
        fanout = self._fanout
        self._note_queued(pending)
        if over_limit(
            pending,
            fanout.max_queue,
            fanout.max_queue_bytes,
            events=self._sending_events,
            # a larger event is shared: the server holds one slice of it at a time
            size=self._held.sending,
        ):
            self._overflow(sum(f.head - c for f, c in zip(self._feeds, self._cursors, strict=True)))

    def _handing(self, body: bytes, count: int, size: int | None = None) -> bytes:
        """Note ``body`` (``count`` events; ``size`` bytes, if not its own: values taken
        instead) as in flight until the stream asks again: for the limits, and in the stats
        while the stream writes."""
        self._sending_events = count
        held = self._held
        if size is None:
            size = len(body)
        join_bytes = self._fanout.join_bytes
        if size > join_bytes:  # a larger event is shared: one slice of it at a time
            size = join_bytes
        if held.writing:  # once the stream ended, nothing is in flight for the stats
            self._counters.sending_bytes += size - held.sending
        held.sending = size
        return body

    def _move(self, slot: int, cursor: int) -> None:
        """Move the cursor in topic ``slot`` to the absolute index ``cursor``, and count the
        bytes taken (or skipped) in the topic's ``taken``."""
        self._cursors[slot] = cursor
        if self._closed:  # once closed, the fan-out took its counts back
            return
        feed = self._feeds[slot]
        index = cursor - feed.base
        starts = feed.starts
        offset = feed.total if index >= len(starts) else starts[index if index > 0 else 0]
        offsets = self._held.offsets
        feed.taken += offset - offsets[slot]
        offsets[slot] = offset

    def _move_to_heads(self) -> None:
        for slot, feed in enumerate(self._feeds):
            self._move(slot, feed.head)

    def _note_queued(self, pending: list[tuple[TopicFeed, int]]) -> None:
        """Keep the most bytes one subscriber had queued (``FanOut.queue_peak``)."""
        queued = sum(feed.bytes_from(cursor) for feed, cursor in pending)
        queued += self._held.sending
        counters = self._counters
        if queued > counters.queue_peak:
            counters.queue_peak = queued

    def _pending(self, feeds: Iterable[TopicFeed]) -> list[tuple[TopicFeed, int]]:
        """Each of ``feeds`` with this subscriber's cursor in it."""
        slot, cursors = self._slot, self._cursors
        return [(feed, cursors[0 if slot is None else slot[feed]]) for feed in feeds]

    def _slow(self, pending: list[tuple[TopicFeed, int]]) -> bytes | None:
        """Past a limit: disconnect, or skip to the newest events and hand out a gap event."""
        fanout = self._fanout
        if not fanout.drop_oldest:
            self._overflow(sum(feed.head - cursor for feed, cursor in pending))
            return None
        cursors, dropped = drop_to_limits(pending, fanout.max_queue, fanout.max_queue_bytes)
        for (feed, _), cursor in zip(pending, cursors, strict=True):
            self._move(0 if self._slot is None else self._slot[feed], cursor)
        counters = self._counters
        counters.dropped += dropped
        counters.gaps["overflow"] += 1
        if self._taken is not None:
            self._taken.append(Gap("overflow", dropped=dropped))
            return self._handing(b"", 0)
        return self._handing(fanout.format.gap("overflow", dropped=dropped), 0)

    def queued_bytes(self) -> int:
        """Bytes this subscriber has not written yet, as its ``max_queue_bytes`` counts them:
        what its topics hold for it, and the chunk it is writing (up to the join budget).
        For tests and tools: the stats read counters instead."""
        pending = self._pending(self._inbox.ready if self._inbox else self._feeds)
        queued = sum(feed.bytes_from(cursor) for feed, cursor in pending)
        return queued + self._held.sending


class WireChunks:
    """A :class:`Subscription` as a source of wire bytes (see
    :meth:`Subscription.wire_chunks`): the chunks go to the stream as they are, no
    :class:`~litestar_sse.RawEvent` made or unwrapped per delivery. Iterating it starts the
    subscription; closing it closes the subscription."""

    __slots__ = ("_next", "subscription")

    def __init__(self, subscription: Subscription) -> None:
        self.subscription = subscription
        self._next = subscription.next_chunk

    def __aiter__(self) -> WireChunks:
        self.subscription.__aiter__()
        return self

    def __anext__(self) -> Coroutine[Any, Any, bytes]:
        return self._next()

    def push_to(self, push: Push) -> None:
        """Have the subscription's events handed to ``push`` while the stream waits (see
        :class:`~litestar_sse.asgi._sources.PushSource`)."""
        self.subscription.push_to(push)

    async def aclose(self) -> None:
        """Unsubscribe (the ASGI layer calls this when the stream ends)."""
        self.subscription.close()
