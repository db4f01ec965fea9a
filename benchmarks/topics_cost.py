"""What one event costs when subscribers follow many topics (memory or Redis backend).

``.venv/bin/python -m benchmarks.topics_cost [--backend memory|redis] [--redis-url URL]``

Two shapes, each with ``--subscribers`` subscriptions of ``--topics`` topics:

* ``wide``: every subscription follows the same topics; each event goes to one of them, at
  random, and so reaches every subscriber.
* ``others``: one more subscription follows a topic of its own, ``hot``, which gets every
  event; the others hold their topics but receive nothing.

Events are published one at a time, each once every subscriber it concerns has received the
previous one: the figure is the time per event, from publish to the last delivery, averaged.
Subscribers read their :class:`~litestar_sse.broadcast.types.Subscription` directly (no ASGI).
For the Redis backend, start a redis-server first (``redis-server --port 6390 --save ''``).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from typing import Any

from litestar_sse.broadcast import Broadcaster, MemoryBackend
from litestar_sse.broadcast.types import BroadcastBackend, Subscription


async def _consume(subscription: Subscription, counter: list[int], changed: asyncio.Event) -> None:
    async for chunk in subscription:
        counter[0] += chunk.encode().count(b"data: x")  # one data line per event
        changed.set()


async def _measure(
    broadcaster: Broadcaster, topic_sets: list[list[str]], targets: list[str], expect: int
) -> float:
    subscriptions = [await broadcaster.open_subscription(topics) for topics in topic_sets]
    counter = [0]
    changed = asyncio.Event()
    tasks = [asyncio.create_task(_consume(s, counter, changed)) for s in subscriptions]
    await asyncio.sleep(0.1)
    started = time.perf_counter()
    for index, topic in enumerate(targets, 1):
        await broadcaster.publish(topic, "x")
        while counter[0] < index * expect:
            changed.clear()
            await changed.wait()
    elapsed = time.perf_counter() - started
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for subscription in subscriptions:
        subscription.close()
    return elapsed / len(targets)


def _backend(args: argparse.Namespace, run: int) -> BroadcastBackend:
    if args.backend == "memory":
        return MemoryBackend()
    from litestar_sse.broadcast import RedisStreamBackend

    return RedisStreamBackend(args.redis_url, prefix=f"topics-cost-{time.time_ns()}-{run}:")


async def main(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(1)
    topics = [f"topic:{i}" for i in range(args.topics)]
    figures: dict[str, Any] = {}
    async with Broadcaster(_backend(args, 0), max_topics=None) as broadcaster:
        targets = [rng.choice(topics) for _ in range(args.events)]
        per_event = await _measure(
            broadcaster, [topics] * args.subscribers, targets, args.subscribers
        )
        figures["wide_ms_per_event"] = round(per_event * 1000, 3)
    async with Broadcaster(_backend(args, 1), max_topics=None) as broadcaster:
        others = [[f"s{s}:{t}" for t in topics] for s in range(args.subscribers)]
        per_event = await _measure(broadcaster, [["hot"], *others], ["hot"] * args.events, 1)
        figures["others_ms_per_event"] = round(per_event * 1000, 3)
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["memory", "redis"], default="memory")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6390/0")
    parser.add_argument("--subscribers", type=int, default=10)
    parser.add_argument("--topics", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=100)
    arguments = parser.parse_args()
    print(
        {"backend": arguments.backend, "subscribers": arguments.subscribers,
         "topics": arguments.topics, **asyncio.run(main(arguments))}
    )  # fmt: skip
