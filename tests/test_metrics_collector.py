"""The Prometheus collector's broadcast metrics, read from a registry of each test's own.

Queue bytes, resumes, replayed events, gap events by reason, and backend (Redis) errors;
``tests/e2e/test_metrics.py`` scrapes the same from a running server.
"""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from litestar_sse.asgi._counters import StreamCounters
from litestar_sse.broadcast import Broadcaster, MemoryBackend, RedisStreamBackend, Retention
from litestar_sse.broadcast._backends.base import Snapshot
from litestar_sse.broadcast.errors import BackendUnavailableError
from litestar_sse.broadcast.types import BroadcastBackend, Subscription
from litestar_sse.metrics import SSECollector
from tests.polling import wait_until
from tests.redis_support import RedisProcess, unique_prefix

pytestmark = pytest.mark.anyio

Sample = Callable[..., float | None]


def metrics_of(broadcaster: Broadcaster) -> Sample:
    """``sample(name, **labels)``: the value the collector reports for ``broadcaster``."""
    registry = CollectorRegistry()
    registry.register(SSECollector({"b": broadcaster}, counters=StreamCounters()))

    def sample(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, {"broadcaster": "b", **labels})

    return sample


def gaps(sample: Sample) -> dict[str, float | None]:
    return {
        reason: sample("litestar_sse_broadcast_gaps_total", reason=reason)
        for reason in ("invalid", "epoch", "retention", "overflow")
    }


def errors(sample: Sample) -> dict[str, float | None]:
    kinds = ("not_published", "outcome_unknown", "subscribe", "replay", "read", "reader")
    return {
        kind: sample("litestar_sse_broadcast_backend_errors_total", error=kind) for kind in kinds
    }


async def chunk(subscription: Subscription) -> bytes:
    return (await asyncio.wait_for(anext(subscription), 5)).encode()


async def comes_back_for_more(subscription: Subscription) -> None:
    """The stream wrote what it took and waits for more (nothing comes)."""
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(anext(subscription), 0.05)


async def test_queue_bytes_are_what_subscribers_have_not_written() -> None:
    async with Broadcaster() as broadcaster:
        sample = metrics_of(broadcaster)

        def queued() -> tuple[float | None, float | None]:
            return (
                sample("litestar_sse_broadcast_queue_bytes"),
                sample("litestar_sse_broadcast_queue_bytes_max"),
            )

        assert queued() == (0, 0)
        one = aiter(await broadcaster.open_subscription("a"))
        both = aiter(await broadcaster.open_subscription(["a", "b"]))
        await broadcaster.publish("a", "x" * 100)
        await broadcaster.publish("b", "y" * 50)
        await broadcaster.publish("a", "z" * 10)
        before = queued()  # the max: nobody came for events yet
        a_bytes = len(await chunk(one))  # both events of "a", joined
        during = queued()  # "one" is writing them
        await comes_back_for_more(one)
        one_done = queued()
        a_and_b = len(await chunk(both))  # all three
        await comes_back_for_more(both)
        b_bytes = a_and_b - a_bytes
        assert b_bytes > 50
        assert before == (a_bytes + a_and_b, 0)
        assert during == (a_bytes + a_and_b, a_bytes)  # a chunk being written still counts
        assert one_done == (a_and_b, a_bytes)  # the max is a peak, kept for 10 to 20 s
        assert queued() == (0, a_and_b)  # "both" had all three queued when it came for them
        one.close()
        both.close()
        assert queued() == (0, a_and_b)


async def test_resumes_replayed_events_and_gaps_by_reason() -> None:
    def retention(topic: str) -> Retention:
        return Retention(max_events=1 if topic == "brief" else 100)

    backend = MemoryBackend(retention=retention)
    async with Broadcaster(backend, max_queue=2, overflow="drop_oldest") as broadcaster:
        sample = metrics_of(broadcaster)
        zero = {"invalid": 0, "epoch": 0, "retention": 0, "overflow": 0}
        assert gaps(sample) == zero
        start = await broadcaster.publish("lobby", "zero")
        for data in ("one", "two"):
            await broadcaster.publish("lobby", data)
            await broadcaster.publish("brief", data)
        head = await broadcaster.publish("lobby", "three")

        # A resume counts once its stream starts: one opened and dropped does not.
        (await broadcaster.open_subscription("lobby", last_event_id=start)).close()
        assert sample("litestar_sse_broadcast_resumes_total") == 0
        # Missed events of lobby replayed, brief's lost: a gap (retention) after them.
        both = aiter(await broadcaster.open_subscription(["lobby", "brief"], last_event_id=start))
        body = await chunk(both)
        assert body.count(b"data: ") == 3
        assert b"event: gap" in await chunk(both)
        assert sample("litestar_sse_broadcast_resumes_total") == 1
        assert sample("litestar_sse_broadcast_replayed_total") == 3
        # An exact resume: nothing to replay, nor a gap.
        exact = aiter(await broadcaster.open_subscription("lobby", last_event_id=head))
        # Not ours, and of another history.
        invalid = aiter(await broadcaster.open_subscription("lobby", last_event_id="bogus"))
        other = aiter(await broadcaster.open_subscription("lobby", last_event_id="0abc-1"))
        assert b"event: gap" in await chunk(invalid)
        assert b"event: gap" in await chunk(other)
        # A slow subscriber under drop_oldest skips to the newest events, after a gap.
        slow = aiter(await broadcaster.open_subscription("fast"))
        for index in range(5):
            await broadcaster.publish("fast", index)
        assert (await chunk(slow)).startswith(b"event: gap")
        assert sample("litestar_sse_broadcast_resumes_total") == 4
        assert sample("litestar_sse_broadcast_replayed_total") == 3
        assert gaps(sample) == {**zero, "retention": 1, "invalid": 1, "epoch": 1, "overflow": 1}
        assert broadcaster.stats().gaps == {
            **zero,
            "retention": 1,
            "invalid": 1,
            "epoch": 1,
            "overflow": 1,
        }
        for subscription in (both, exact, invalid, other, slow):
            subscription.close()
        # the memory backend never fails: every kind is there, at 0
        assert errors(sample) == dict.fromkeys(errors(sample), 0)
        assert sample("litestar_sse_broadcast_backend_reconnects_total") == 0


async def test_redis_errors_are_counted_by_what_failed(
    redis_process: Callable[..., RedisProcess],
) -> None:
    server = redis_process()
    backend = RedisStreamBackend(
        server.url,
        prefix=unique_prefix(),
        publish_timeout=0.5,
        watch_timeout=0.5,
        block_timeout=0.1,
    )
    async with Broadcaster(backend) as broadcaster:
        sample = metrics_of(broadcaster)
        assert errors(sample) == dict.fromkeys(errors(sample), 0)
        start = await broadcaster.publish("t", "warm")
        await broadcaster.publish("t", "missed")
        # Subscribed while Redis answers; its replay is read once its stream runs.
        resuming = aiter(await broadcaster.open_subscription("t", last_event_id=start))

        raised: list[str] = []
        with server.stalled():
            for data in ("one", "two"):
                with pytest.raises(BackendUnavailableError) as refused:
                    await broadcaster.publish("t", data)
                raised.append(type(refused.value).__name__)
        # as the stall tests find: sent on an idle connection, then none could be had
        assert raised == ["PublishOutcomeUnknownError", "NotPublishedError"]

        server.stop()
        with pytest.raises(BackendUnavailableError):
            await broadcaster.open_subscription("new")
        with pytest.raises(StopAsyncIteration):  # the replay could not be read: it ends
            await anext(resuming)
        with pytest.raises(BackendUnavailableError):
            [item async for item in broadcaster.history("t")]
        with pytest.raises(BackendUnavailableError):
            await broadcaster.topic_of(start)
        await wait_until(
            lambda: (
                (sample("litestar_sse_broadcast_backend_errors_total", error="reader") or 0) >= 1
            ),
            timeout=10.0,
        )
        assert sample("litestar_sse_broadcast_backend_reconnects_total") == 0
        server.start()
        await wait_until(
            lambda: sample("litestar_sse_broadcast_backend_reconnects_total") == 1, timeout=10.0
        )
        counted = errors(sample)
        reader = counted.pop("reader")
        assert reader is not None
        assert reader >= 1  # a round per retry while Redis was away
        assert counted == {
            "not_published": 1,
            "outcome_unknown": 1,
            "subscribe": 1,
            "replay": 1,
            "read": 2,
        }
        stats = broadcaster.stats()
        assert stats.backend_errors["read"] == 2
        assert stats.backend_reconnects == 1


class _Quiet(BroadcastBackend):
    """A third-party backend that reports nothing of its own."""

    async def publish(
        self, topic: str, event: bytes | None, data: bytes, *, idempotency_key: str | None = None
    ) -> str:
        raise NotImplementedError

    async def snapshot(self, topics: Sequence[str], last_event_id: str | None) -> Snapshot:
        return Snapshot(resumed_from="")


def test_a_backend_without_stats_reports_zeros() -> None:
    sample = metrics_of(Broadcaster(_Quiet()))
    assert errors(sample) == dict.fromkeys(errors(sample), 0)
    assert sample("litestar_sse_broadcast_backend_reconnects_total") == 0
    assert sample("litestar_sse_broadcast_queue_bytes") == 0


def test_labels_name_each_broadcaster() -> None:
    registry = CollectorRegistry()
    registry.register(
        SSECollector({"x": Broadcaster(), "y": Broadcaster()}, counters=StreamCounters())
    )
    for name in ("x", "y"):
        labels: dict[str, Any] = {"broadcaster": name, "reason": "epoch"}
        assert registry.get_sample_value("litestar_sse_broadcast_gaps_total", labels) == 0
        labels = {"broadcaster": name}
        assert registry.get_sample_value("litestar_sse_broadcast_resumes_total", labels) == 0


async def test_a_subscriber_disconnected_for_being_slow_has_nothing_queued_once_closed() -> None:
    async with Broadcaster(max_queue=1000, max_queue_bytes=10_000) as broadcaster:
        sample = metrics_of(broadcaster)
        stuck = aiter(await broadcaster.open_subscription("t"))
        await broadcaster.publish("t", "x" * 1000)
        in_flight = len(await chunk(stuck))  # its stream is stuck writing it
        for _ in range(40):  # more than 2 x max_queue_bytes: the topic checks its laggards
            await broadcaster.publish("t", "y" * 1000)
        assert stuck.closed  # disconnected: too slow
        assert broadcaster.stats().disconnected == 1
        assert sample("litestar_sse_broadcast_queue_bytes") == in_flight  # still being written
        stuck.close()  # the stream ended: aclose()
        assert sample("litestar_sse_broadcast_queue_bytes") == 0
        # the peak shows it: past max_queue_bytes when its topic found it too slow
        assert sample("litestar_sse_broadcast_queue_bytes_max") > 10_000


def scrape(collector: SSECollector) -> None:
    list(collector.collect())


def calls_during(function: Callable[[], Any]) -> int:
    """Python and C functions called while ``function`` runs: its cost in operations."""
    calls = 0

    def profile(frame: Any, event: str, arg: Any) -> None:
        nonlocal calls
        if event in ("call", "c_call"):
            calls += 1

    sys.setprofile(profile)
    try:
        function()
    finally:
        sys.setprofile(None)
    return calls


async def test_a_scrape_costs_the_same_whatever_the_number_of_subscriptions() -> None:
    # A scrape walked every subscription: 1.9 / 14.5 / 69.7 ms of blocked loop at 1k / 10k /
    # 50k subscriptions. Its cost is now a few operations per topic, none per subscription.
    costs = {}
    for count in (50, 2000):
        async with Broadcaster() as broadcaster:
            registry = CollectorRegistry()
            collector = SSECollector({"b": broadcaster}, counters=StreamCounters())
            registry.register(collector)
            topics = [f"t{index}" for index in range(10)]
            subscriptions = [
                aiter(await broadcaster.open_subscription(topics[index % 10 :][:2]))
                for index in range(count)
            ]
            for topic in topics:  # every subscription has events queued
                await broadcaster.publish(topic, "x" * 100)
            for subscription in subscriptions[:10]:  # some are writing a chunk
                await chunk(subscription)
            stats = broadcaster.stats()
            assert sum(stats.subscribers.values()) == 2 * count - count // 10
            assert stats.queue_bytes > count * 100
            list(collector.collect())  # once first: imports, caches
            costs[count] = calls_during(functools.partial(scrape, collector))
            for subscription in subscriptions:
                subscription.close()
    assert costs[2000] == costs[50], costs


def test_cleanups_cut_are_reported() -> None:
    counters = StreamCounters()
    counters.cleanups_cut = 3
    registry = CollectorRegistry()
    registry.register(SSECollector(counters=counters))
    assert registry.get_sample_value("litestar_sse_cleanups_cut_total") == 3
