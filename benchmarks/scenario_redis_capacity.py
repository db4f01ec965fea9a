"""Scenario 9: Redis' CPU per event, and so how far one primary carries a deployment.

One throw-away redis-server (loopback, no persistence) started by the scenario; one
``Broadcaster`` on ``RedisStreamBackend`` publishing ~100-byte events to 8 topics and
``WORKERS`` other broadcasters, standing for as many worker processes, each following the 8
topics. From ``INFO commandstats`` (reset before each case): Redis' CPU per event in the
publish script (``EVALSHA``) and in the reads of each worker (``XREAD`` and the
``MULTI``/``EXEC``/``HMGET`` of its rounds), for a publish alone, 16 concurrent publishes and
``publish_many`` of 1,000, against the fair floor's script of scenario 8 run once per event.
Then the load of example deployments on one primary, computed from those figures as
``events/s x (write + workers x read)``.

``python -m benchmarks.run --scenario redis_capacity [--quick]``, or alone:
``python -m benchmarks.scenario_redis_capacity [--quick]``.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from benchmarks.report import Report, Row, Table, environment, publish
from benchmarks.scenario_redis_publish import FLOOR_SCRIPT, PAYLOAD, redis_server

NAME = "redis_capacity"
TITLE = "Scenario 9: one Redis primary's CPU per event (publishes and each worker's reads)"
TOPICS = [f"topic-{i}" for i in range(8)]
WORKERS = 4
BATCH = 1000
CONCURRENT = 16
ALONE = "a publish alone"
SHARED = "16 concurrent publishes"
MANY = "publish_many of 1,000"
DEPLOYMENTS = (
    # label, workers, case whose figures apply, events/s (None: what one core carries)
    ("90,000 subscribers on 6 workers at 20 events/s", 6, ALONE, 20.0),
    ("16 workers, events one at a time", 16, ALONE, None),
    ("16 workers, batches of 1,000", 16, MANY, None),
)
DESCRIPTION = f"""
One redis-server (loopback, `--save '' --appendonly no`) started by the run. One
`Broadcaster(RedisStreamBackend)` publishes ~100-byte events to 8 topics while {WORKERS}
other broadcasters, standing for {WORKERS} worker processes, each follow the 8 topics.
Redis runs every script and every read on one core; `INFO commandstats` (reset before each
case) gives its CPU per event in the publish script (`EVALSHA`) and in the reads of each
worker (`XREAD` and the `MULTI`/`EXEC`/`HMGET` of its rounds, divided by the {WORKERS}
workers). Cases: a publish alone (one at a time), {CONCURRENT} concurrent publishes from one
process (publishes made while one is in flight share one script), `publish_many` of 1,000
events; `raw` is the fair floor's script of scenario 8 (`redis_publish`) run once per event,
one at a time, which nobody follows. Metric: Redis µs per event (lower is better).
Subscribers cost Redis nothing: each worker reads each event once and fans it out itself, so
one primary's load is `events/s x (write + workers x read)` µs per second. The second table
computes it, from the first table's medians, for example deployments: 90,000 subscribers on
6 workers at 20 events/s; 16 workers following every topic, events published one at a
time or in batches of 1,000, with the events/s one core carries.
"""


def _usec(stats: dict[str, Any], *commands: str) -> float:
    """Redis' CPU in ``commands`` since the last reset, in µs."""
    return float(sum(stats.get(f"cmdstat_{name}", {}).get("usec", 0) for name in commands))


async def _drain(subscription: Any) -> None:
    async for _ in subscription:
        pass


async def _measure(url: str, quick: bool) -> dict[str, dict[str, list[float]]]:
    """Per case: the publish script's and each worker's reads' µs per event, per repetition."""
    from redis.asyncio import Redis

    from litestar_sse.broadcast import Broadcaster, RedisStreamBackend
    from litestar_sse.broadcast._batch import BatchEvent

    repetitions = 3 if quick else 7
    scale = 0.3 if quick else 1.0
    client = Redis.from_url(url)
    publisher = Broadcaster(RedisStreamBackend(client, prefix="capacity:"))
    others = [Broadcaster(RedisStreamBackend(url, prefix="capacity:")) for _ in range(WORKERS)]
    floor = client.register_script(FLOOR_SCRIPT)
    raw_keys = [
        ["raw:meta", f"raw:topic:{t}", "raw:log", f"raw:st:{t}", "raw:tr", "raw:nw"] for t in TOPICS
    ]
    results: dict[str, dict[str, list[float]]] = {}
    async with publisher:
        subscriptions = []
        for other in others:
            await other.start()
            subscriptions.append(await other.open_subscription(TOPICS))
        readers = [asyncio.ensure_future(_drain(s)) for s in subscriptions]
        batch = [BatchEvent(TOPICS[i % 8], PAYLOAD % i) for i in range(BATCH)]
        for _ in range(5):  # the streams at their retention, the scripts loaded
            await publisher.publish_many(batch)

        async def one(sequence: int) -> Any:
            return await publisher.publish(TOPICS[sequence % 8], PAYLOAD % sequence)

        async def shared(sequence: int) -> Any:
            return await asyncio.gather(
                *(publisher.publish(TOPICS[i % 8], PAYLOAD % i) for i in range(CONCURRENT))
            )

        async def many(sequence: int) -> Any:
            return await publisher.publish_many(batch)

        async def raw(sequence: int) -> Any:
            index = sequence % 8
            data = (PAYLOAD % sequence).encode()
            return await floor(keys=raw_keys[index], args=[data, TOPICS[index], "e"])

        cases: list[tuple[str, int, int, Callable[[int], Awaitable[Any]]]] = [
            ("raw", int(3000 * scale), 1, raw),
            (ALONE, int(3000 * scale), 1, one),
            (SHARED, int(300 * scale), CONCURRENT, shared),
            (MANY, max(5, int(20 * scale)), BATCH, many),
        ]
        for _ in range(2):  # warm: the floor's streams at their retention too
            for _, calls, _, go in cases:
                for sequence in range(calls):
                    await go(sequence)
        for label, *_ in cases:
            results[label] = {"write": [], "read": []}
        for repetition in range(repetitions):
            for label, calls, per_call, go in cases:
                await asyncio.sleep(0.3)  # the readers caught up with the last case
                await client.config_resetstat()
                for sequence in range(calls):
                    await go(sequence)
                await asyncio.sleep(0.3)
                stats = await client.info("commandstats")
                events = calls * per_call
                results[label]["write"].append(_usec(stats, "evalsha") / events)
                reads = _usec(stats, "xread", "exec", "multi", "hmget") / events / WORKERS
                results[label]["read"].append(reads)
            print(f"[redis_capacity] repetition {repetition + 1}", flush=True)
        for task in readers:
            task.cancel()
        for subscription in subscriptions:
            subscription.close()
        for other in others:
            await other.close()
    await client.aclose()
    return results


def _spread(values: list[float]) -> float | None:
    if len(values) < 3:
        return None
    q = statistics.quantiles(values, n=4)
    return (q[2] - q[0]) / 2 / statistics.median(values)


def _tables(results: dict[str, dict[str, list[float]]]) -> list[Table]:
    write = {case: statistics.median(by["write"]) for case, by in results.items()}
    read = {case: statistics.median(by["read"]) for case, by in results.items()}
    per_event = []
    for case, by in results.items():
        extra = {"events/s one core": f"{1e6 / write[case]:,.0f}"}
        if case != "raw":
            extra[f"reads µs/event per worker ({WORKERS} workers)"] = f"{read[case]:.2f}"
        per_event.append(Row(case, write[case], _spread(by["write"]), extra))
    reads_column = f"reads µs/event per worker ({WORKERS} workers)"
    load = []
    for label, workers, case, rate in DEPLOYMENTS:
        cost = write[case] + workers * read[case]
        extra = {"events/s one core": f"{1e6 / cost:,.0f}"}
        if rate is not None:
            extra["Redis ms of CPU per second"] = f"{rate * cost / 1000:.2f}"
        load.append(Row(label, cost, None, extra))
    return [
        Table(
            "Redis CPU per event",
            "publish script µs/event",
            per_event,
            [reads_column, "events/s one core"],
        ),
        Table(
            "One primary's load",
            "Redis µs per event",
            load,
            ["Redis ms of CPU per second", "events/s one core"],
        ),
    ]


def run(impls: Any, quick: bool, env: dict[str, str]) -> Report:
    """Measure every case; the Redis CPU per event and the example deployments' load."""
    with redis_server() as url:
        version = subprocess.run(
            ["redis-server", "--version"], capture_output=True, text=True, check=False
        ).stdout.split()
        results = asyncio.run(_measure(url, quick))
    redis_version = next((part for part in version if part.startswith("v=")), "?")
    notes = [
        "events/s one core: 1,000,000 µs over the row's µs per event, the publish script alone "
        "in the first table, the script plus every worker's reads in the second.",
        "x raw in the first table: Redis' CPU per event against the floor's one script per "
        "event; the second table's rows are computed, not measured, and have no spread.",
        "Deployments: write and read are the medians of `a publish alone` (events one at a "
        "time) or `publish_many of 1,000` (batches) above.",
    ]
    return Report(
        NAME,
        TITLE,
        DESCRIPTION,
        quick,
        _tables(results),
        notes,
        environment={**env, "redis-server": redis_version.removeprefix("v=")},
    )


def main() -> None:
    quick = "--quick" in sys.argv[1:]
    os.environ.setdefault("PYTHONHASHSEED", "0")
    publish(run(None, quick, environment({})))


if __name__ == "__main__":
    main()
