"""What one Redis primary spends per event: publishes alone, concurrent, in batches, and the
reads of each worker process that follows the topics.

``.venv/bin/python -m benchmarks.redis_capacity`` starts its own redis-server (loopback, no
persistence) and prints, from ``INFO commandstats``, Redis' CPU per event (the publish
script, ``EVALSHA``) and, with 4 other broadcasters standing for 4 worker processes each
following the 8 topics, their reads (``XREAD`` and the ``MULTI``/``EXEC`` of each round) per
event and per worker. The performance page turns these into how far one primary carries a
deployment.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis

from benchmarks.scenario_redis_publish import PAYLOAD, redis_server
from litestar_sse.broadcast import Broadcaster, RedisStreamBackend
from litestar_sse.broadcast._batch import BatchEvent

TOPICS = [f"topic-{i}" for i in range(8)]
WORKERS = 4


def _usec(stats: dict[str, Any], events: int, *commands: str) -> float:
    """Redis' CPU in ``commands`` per event, in µs."""
    spent = sum(stats.get(f"cmdstat_{name}", {}).get("usec", 0) for name in commands)
    return float(spent) / events


async def _drain(subscription: Any) -> None:
    async for _ in subscription:
        pass


async def _measure(url: str, workers: int) -> None:
    client = Redis.from_url(url)
    publisher = Broadcaster(RedisStreamBackend(client, prefix="capacity:"))
    others = [Broadcaster(RedisStreamBackend(url, prefix="capacity:")) for _ in range(workers)]
    async with publisher:
        subscriptions = []
        for other in others:
            await other.start()
            subscriptions.append(await other.open_subscription(TOPICS))
        readers = [asyncio.ensure_future(_drain(s)) for s in subscriptions]
        batch = [BatchEvent(TOPICS[i % 8], PAYLOAD % i) for i in range(1000)]
        for _ in range(5):  # the streams at their retention, the scripts loaded
            await publisher.publish_many(batch)

        async def one() -> Any:
            return await publisher.publish("topic-1", PAYLOAD % 1)

        async def sixteen() -> Any:
            return await asyncio.gather(
                *(publisher.publish(TOPICS[i % 8], PAYLOAD % i) for i in range(16))
            )

        async def many() -> Any:
            return await publisher.publish_many(batch)

        cases: list[tuple[str, int, int, Callable[[], Awaitable[Any]]]] = [
            ("a publish alone", 3000, 1, one),
            ("16 concurrent publishes", 300, 16, sixteen),
            ("publish_many of 1,000", 20, 1000, many),
        ]
        for label, calls, per_call, go in cases:
            await asyncio.sleep(0.5)
            await client.config_resetstat()
            for _ in range(calls):
                await go()
            await asyncio.sleep(0.5)  # the readers caught up
            stats = await client.info("commandstats")
            events = calls * per_call

            line = f"{label:>24}: publish script {_usec(stats, events, 'evalsha'):6.2f} µs/event"
            if workers:
                reads = _usec(stats, events, "xread", "exec", "multi", "hmget") / workers
                line += f", reads {reads:5.2f} µs/event per worker ({workers} workers)"
            print(line, flush=True)
        for task in readers:
            task.cancel()
        for subscription in subscriptions:
            subscription.close()
        for other in others:
            await other.close()
    await client.aclose()


def main() -> None:
    with redis_server() as url:
        asyncio.run(_measure(url, 0))
        asyncio.run(_measure(url, WORKERS))


if __name__ == "__main__":
    main()
