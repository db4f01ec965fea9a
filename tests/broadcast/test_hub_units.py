"""The hub's pure parts, without an event loop: a topic's ring (TopicFeed), and the limits
and batches a subscriber takes from the rings (hub/limits.py).

Events are appended with increasing positions (one sequence for every topic, as a backend
numbers them), so events of several topics are taken in publication order.
"""

from __future__ import annotations

import itertools
from typing import Any

from litestar_sse.broadcast._events.values import BroadcastMessage
from litestar_sse.broadcast._hub.feeds import TopicFeed
from litestar_sse.broadcast._hub.limits import drop_to_limits, over_limit, take_batch

_positions = itertools.count(1)


def feed(name: str = "t", *events: bytes, keep: int = 100, keep_bytes: int = 10**9) -> TopicFeed:
    topic = TopicFeed(name, keep, disconnect_slow=False, keep_bytes=keep_bytes)
    for event in events:
        topic.append(next(_positions), event)
    return topic


def test_a_feed_counts_its_events_and_their_bytes() -> None:
    topic = feed("t", b"aa", b"bbb", b"c")
    assert (topic.base, topic.head, topic.total) == (0, 3, 6)
    assert topic.bytes_from(0) == 6
    assert topic.bytes_from(1) == 4
    assert topic.bytes_from(3) == 0
    assert topic.bytes_from(-5) == 6  # before the oldest kept: everything kept


def test_a_feed_keeps_at_least_keep_events_behind_its_head() -> None:
    topic = feed("t", *[b"x"] * 100, keep=10)
    # Trimmed in steps (once per keep + 16 events), never below keep events.
    assert len(topic.chunks) >= 10
    assert topic.head == 100
    assert topic.chunks == [b"x"] * len(topic.chunks)
    assert topic.positions == sorted(topic.positions)


def test_a_feed_trims_by_bytes_but_keeps_the_newest_event_whatever_its_size() -> None:
    topic = feed("t", b"a" * 10, b"b" * 10, keep=1000, keep_bytes=15)
    topic.append(next(_positions), b"c" * 100)  # over twice keep_bytes: trimmed now
    assert topic.chunks[-1] == b"c" * 100
    assert topic.head == 3
    assert topic.newest_within(1000, 15) == 2  # only the newest, larger than the budget


def test_newest_within_counts_events_and_bytes() -> None:
    topic = feed("t", b"aaaa", b"bbbb", b"cccc", b"dddd")
    assert topic.newest_within(10, 100) == 0
    assert topic.newest_within(2, 100) == 2
    assert topic.newest_within(10, 8) == 2
    assert topic.newest_within(10, 7) == 3
    assert topic.newest_within(10, 0) == 3  # the newest always remains


def test_a_batch_joins_events_within_the_budget_and_takes_at_least_one() -> None:
    topic = feed("t", b"aaaa", b"bbbb", b"cccc")
    assert take_batch([(topic, 0)], 8) == (b"aaaabbbb", 2, [2])
    assert take_batch([(topic, 2)], 8) == (b"cccc", 1, [3])
    assert take_batch([(topic, 0)], 1) == (b"aaaa", 1, [1])


def test_a_single_event_batch_is_the_shared_object_not_a_copy() -> None:
    large = b"z" * 100_000
    topic = feed("t", large)
    body, count, _ = take_batch([(topic, 0)], 64 * 1024)
    assert body is large
    assert count == 1


def test_a_batch_of_several_topics_is_in_publication_order() -> None:
    a = TopicFeed("a", 100, disconnect_slow=False)
    b = TopicFeed("b", 100, disconnect_slow=False)
    for topic, event in [(a, b"a1"), (b, b"b1"), (a, b"a2"), (b, b"b2"), (b, b"b3")]:
        topic.append(next(_positions), event)
    assert take_batch([(a, 0), (b, 0)], 100) == (b"a1b1a2b2b3", 5, [2, 3])
    assert take_batch([(a, 0), (b, 0)], 6) == (b"a1b1a2", 3, [2, 1])
    assert take_batch([(a, 1), (b, 2)], 100) == (b"a2b3", 2, [2, 3])


def test_a_subscriber_is_slow_past_max_queue_events_of_one_topic() -> None:
    topic = feed("t", *[b"x"] * 5)
    assert not over_limit([(topic, 0)], 5, 10**9)
    assert over_limit([(topic, 0)], 4, 10**9)
    assert not over_limit([(topic, 4)], 0, 10**9)  # one event is never too many


def test_a_subscriber_is_slow_past_max_bytes_in_all_its_topics_and_in_flight() -> None:
    a = feed("a", b"x" * 10)
    b = feed("b", b"y" * 10)
    assert not over_limit([(a, 0), (b, 0)], 100, 20)
    assert over_limit([(a, 0), (b, 0)], 100, 19)
    assert over_limit([(a, 0)], 100, 15, events=1, size=10)  # what is in flight counts
    assert not over_limit([(a, 0)], 100, 5)  # one event alone, whatever its size


def test_events_that_left_the_ring_count_as_too_many() -> None:
    topic = feed("t", *[b"x"] * 100, keep=10)
    assert topic.base > 0
    assert over_limit([(topic, 0)], 1000, 10**9)


def test_dropping_to_the_limits_keeps_the_newest_events_per_topic() -> None:
    topic = feed("t", *[b"x"] * 10)
    cursors, dropped = drop_to_limits([(topic, 0)], 3, 10**9)
    assert (cursors, dropped) == ([7], 7)
    cursors, dropped = drop_to_limits([(topic, 0)], 100, 4)
    assert (cursors, dropped) == ([6], 6)


def test_dropping_across_topics_drops_the_oldest_of_all_and_keeps_the_newest() -> None:
    a = TopicFeed("a", 100, disconnect_slow=False)
    b = TopicFeed("b", 100, disconnect_slow=False)
    for topic, event in [(a, b"a1" * 5), (b, b"b1" * 5), (a, b"a2" * 5), (b, b"b2" * 5)]:
        topic.append(next(_positions), event)
    # 10 bytes each: 20 bytes fit, the two newest (a2, b2)
    cursors, dropped = drop_to_limits([(a, 0), (b, 0)], 100, 20)
    assert (cursors, dropped) == ([1, 1], 2)
    # 5 bytes: nothing fits but the newest event (b2) always remains
    cursors, dropped = drop_to_limits([(a, 0), (b, 0)], 100, 5)
    assert (cursors, dropped) == ([2, 1], 3)


def test_span_bytes_counts_the_bytes_of_a_run_of_events() -> None:
    topic = feed("t", b"aa", b"bbb", b"c")
    assert topic.span_bytes(0, 3) == 6
    assert topic.span_bytes(1, 2) == 3
    assert topic.span_bytes(1, 3) == 4
    assert topic.span_bytes(2, 2) == 0


def test_a_batch_of_values_is_the_same_events_in_the_same_order_unjoined() -> None:
    a = TopicFeed("a", 100, disconnect_slow=False)
    b = TopicFeed("b", 100, disconnect_slow=False)
    events = [(a, b"a1"), (b, b"b1"), (a, b"a2"), (b, b"b2"), (b, b"b3")]
    for number, (topic, event) in enumerate(events):
        value = BroadcastMessage(topic.name, str(number), None, event.decode())
        topic.append(next(_positions), event, value)
    taken: list[Any] = []
    assert take_batch([(a, 0), (b, 0)], 6, taken) == (b"", 3, [2, 1])
    assert [value.data for value in taken] == ["a1", "b1", "a2"]
    assert take_batch([(b, 1)], 100, taken) == (b"", 2, [3])
    assert [value.data for value in taken] == ["a1", "b1", "a2", "b2", "b3"]
    assert taken[0] is a.values[0]  # shared, not copied
