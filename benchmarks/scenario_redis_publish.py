"""Scenario 8: ``Broadcaster.publish`` and ``publish_many`` on Redis against raw redis-py.

One throw-away redis-server (loopback, no persistence) started by the scenario, and, in one
asyncio process, N concurrent publishers (1 and 16) publishing as fast as they can for a
fixed time, each implementation in turn, alternating the order in every repetition:

* ``raw`` (the fair floor): redis-py ``EVALSHA`` of a hand-written script running the
  commands ``publish.lua`` runs for such an event, atomically: the epoch and the shared
  clock (``TIME``, the meta hash), the reads of the hashes of earlier versions, ``XADD`` to
  the topic's stream and to the change log, the trims by count (noting the newest removed
  id), ``PERSIST`` of the topic's state. Nothing of our checks, encoding, idempotency keys,
  batching or connection handling.
* ``litestar_sse``: ``Broadcaster.publish`` on ``RedisStreamBackend`` (default retention).
* ``redis-py XADD``: plain ``XADD <stream> * d <data>``, no trimming, no log: not the same
  work, the least a Redis write costs.

Then batches: ``publish_many`` of 1,000 events (8 topics) against the floor's script run
1,000 times in one pipeline (one round trip) and 1,000 ``XADD`` in one pipeline.

``python -m benchmarks.run --scenario redis_publish [--quick]``, or alone:
``python -m benchmarks.scenario_redis_publish [--quick]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from benchmarks.report import Report, Row, Table, environment, publish

NAME = "redis_publish"
TITLE = "Scenario 8: publishing on Redis (publish, publish_many, raw redis-py)"
DESCRIPTION = """
One redis-server (loopback, `--save '' --appendonly no`) started by the run; one asyncio
process with 1 or 16 concurrent publishers, each publishing ~100-byte events to one of 8
topics as fast as it can for a fixed time. Metric: microseconds per published event (lower is
better; events/s in its own column). `raw` is the fair floor: redis-py `EVALSHA` of a
hand-written script running the commands `publish.lua` runs for such an event (the epoch,
the clock, XADD to the stream and the change log, trims, the topic's state), nothing else.
`redis-py XADD` is a plain XADD, not the same work: the least one Redis write costs.
Batches: 1,000 events per call, against the floor's script 1,000 times in one pipeline and
1,000 XADD in one pipeline.
"""

FLOOR_SCRIPT = """
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then epoch = ARGV[3]; redis.call('HSET', KEYS[1], 'epoch', epoch) end
local clock = redis.call('HMGET', KEYS[1], 'ms', 'n', 'll')
local ms, n = tonumber(clock[1]) or 0, tonumber(clock[2]) or 0
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now > ms then ms, n = now, 0 else n = n + 1 end
local id = string.format('%d', ms) .. '-' .. string.format('%d', n)
redis.call('HSET', KEYS[1], 'ms', string.format('%d', ms), 'n', string.format('%d', n), 'll', id)
redis.call('HGET', KEYS[5], ARGV[2])
redis.call('HDEL', KEYS[6], ARGV[2])
redis.call('XADD', KEYS[2], id, 'd', ARGV[1])
redis.call('XADD', KEYS[3], id, 't', ARGV[2])
if redis.call('XLEN', KEYS[3]) > 100000 then
  local oldest = redis.call('XRANGE', KEYS[3], '-', '+', 'COUNT', 1)[1][1]
  redis.call('XDEL', KEYS[3], oldest)
  redis.call('HSET', KEYS[1], 'lt', oldest)
end
local excess = redis.call('XLEN', KEYS[2]) - 1000
if excess > 0 then
  local trimmed = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', excess)
  redis.call('XTRIM', KEYS[2], 'MAXLEN', 1000)
  redis.call('HSET', KEYS[4], 't', trimmed[#trimmed][1])
end
redis.call('PERSIST', KEYS[4])
return {epoch, id}
"""

TOPICS = 8
PAYLOAD = '{"kind":"update","seq":%d,"text":"' + "x" * 64 + '"}'
BATCH = 1000
CONCURRENCY = (1, 16)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A throw-away redis-server on loopback without persistence; yields its URL."""
    port = _free_port()
    directory = tempfile.mkdtemp(prefix="bench-redis-")
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no", "--dir", directory]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)


Publish = Callable[[int, int], Awaitable[Any]]
"""publish(publisher, sequence) for one event."""


async def _rate(publish: Publish, publishers: int, seconds: float) -> float:
    """Microseconds per event over ``seconds``, ``publishers`` tasks publishing in turn."""
    counts = [0] * publishers
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds

    async def one(index: int) -> None:
        sequence = 0
        while loop.time() < deadline:
            await publish(index, sequence)
            sequence += 1
        counts[index] = sequence

    started = time.perf_counter()
    await asyncio.gather(*(one(index) for index in range(publishers)))
    return (time.perf_counter() - started) * 1e6 / max(1, sum(counts))


async def _measure(url: str, quick: bool) -> dict[str, dict[str, list[float]]]:
    from redis.asyncio import Redis

    from litestar_sse.broadcast import Broadcaster, RedisStreamBackend
    from litestar_sse.broadcast._batch import BatchEvent

    seconds = 0.6 if quick else 2.0
    repetitions = 5 if quick else 9
    client = Redis.from_url(url)
    prefix = f"bench{time.time_ns()}:"
    backend = RedisStreamBackend(client, prefix=prefix)
    floor = client.register_script(FLOOR_SCRIPT)
    payloads = [(PAYLOAD % i).encode() for i in range(BATCH)]
    texts = [PAYLOAD % i for i in range(BATCH)]
    topic_names = [f"topic-{n}" for n in range(TOPICS)]
    raw = f"raw:{prefix}"
    raw_keys = [
        [f"{raw}meta", f"{raw}topic:{t}", f"{raw}log", f"{raw}st:{t}", f"{raw}tr", f"{raw}nw"]
        for t in topic_names
    ]

    async with Broadcaster(backend) as broadcaster:

        async def ours(publisher: int, sequence: int) -> Any:
            topic = topic_names[(publisher + sequence) % TOPICS]
            return await broadcaster.publish(topic, texts[sequence % BATCH])

        async def raw(publisher: int, sequence: int) -> Any:
            index = (publisher + sequence) % TOPICS
            return await floor(
                keys=raw_keys[index], args=[payloads[sequence % BATCH], topic_names[index], "e"]
            )

        async def xadd(publisher: int, sequence: int) -> Any:
            topic = f"xadd:{prefix}{topic_names[(publisher + sequence) % TOPICS]}"
            return await client.xadd(topic, {"d": payloads[sequence % BATCH]})

        batch = [BatchEvent(topic_names[i % TOPICS], texts[i]) for i in range(BATCH)]

        async def ours_batch(publisher: int, sequence: int) -> Any:
            return await broadcaster.publish_many(batch)

        async def raw_batch(publisher: int, sequence: int) -> Any:
            async with client.pipeline(transaction=False) as pipe:
                for i in range(BATCH):
                    index = i % TOPICS
                    await floor(keys=raw_keys[index], args=[payloads[i], topic_names[index], "e"],
                                client=pipe)  # fmt: skip
                return await pipe.execute()

        async def xadd_batch(publisher: int, sequence: int) -> Any:
            async with client.pipeline(transaction=False) as pipe:
                for i in range(BATCH):
                    pipe.xadd(f"xadd:{prefix}{topic_names[i % TOPICS]}", {"d": payloads[i]})
                return await pipe.execute()

        cases: dict[str, dict[str, Publish]] = {
            f"{n} publisher{'s' if n > 1 else ''}": {
                "raw": raw,
                "litestar_sse": ours,
                "redis-py XADD": xadd,
            }
            for n in CONCURRENCY
        }
        cases["batches of 1,000"] = {
            "raw": raw_batch,
            "litestar_sse": ours_batch,
            "redis-py XADD": xadd_batch,
        }
        results: dict[str, dict[str, list[float]]] = {
            case: {impl: [] for impl in impls} for case, impls in cases.items()
        }
        for case, impls in cases.items():
            publishers = 1 if case.startswith("batches") else int(case.split()[0])
            per_call = BATCH if case.startswith("batches") else 1
            names = list(impls)
            for _ in range(3):  # warm the scripts, the pool and the streams
                for name in names:
                    await _rate(impls[name], publishers, 0.1)
            for repetition in range(repetitions):
                shift = repetition % len(names)
                for name in names[shift:] + names[:shift]:
                    per = await _rate(impls[name], publishers, seconds)
                    results[case][name].append(per / per_call)
                print(f"[redis_publish] {case} repetition {repetition + 1}", flush=True)
            # the next case starts from empty streams of the floors, as this one did
            await client.delete(*(f"xadd:{prefix}{t}" for t in topic_names))
            await client.delete(*(key for keys in raw_keys for key in keys))
    await client.aclose()
    return results


def _spread(values: list[float]) -> float | None:
    if len(values) < 3:
        return None
    q = statistics.quantiles(values, n=4)
    return (q[2] - q[0]) / 2 / statistics.median(values)


def run(impls: Any, quick: bool, env: dict[str, str]) -> Report:
    """Measure every case; one table per case."""
    with redis_server() as url:
        version = subprocess.run(
            ["redis-server", "--version"], capture_output=True, text=True, check=False
        ).stdout.split()
        results = asyncio.run(_measure(url, quick))
    tables = []
    for case, by_impl in results.items():
        medians = {impl: statistics.median(values) for impl, values in by_impl.items()}
        rows = []
        for impl, values in by_impl.items():
            median = medians[impl]
            extra = {
                "events/s": f"{1e6 / median:,.0f}",
                "throughput / floor": f"{medians['raw'] / median:.2f}x",
                "throughput / XADD": f"{medians['redis-py XADD'] / median:.2f}x",
            }
            rows.append(Row(impl, median, _spread(values), extra))
        tables.append(
            Table(
                case,
                "µs per event",
                rows,
                ["events/s", "throughput / floor", "throughput / XADD"],
                digits=2,
            )
        )
    redis_version = next((part for part in version if part.startswith("v=")), "?")
    notes = [
        "throughput / floor: events/s of the row over the floor's (the goal for "
        "litestar_sse: >= 0.9x at 1 and 16 publishers)",
        "The floor and XADD are redis-py's own calls: 16 concurrent callers take 16 "
        "connections; litestar_sse's publishes made while one is in flight share the next "
        "round trip.",
    ]
    return Report(
        NAME,
        TITLE,
        DESCRIPTION,
        quick,
        tables,
        notes,
        environment={**env, "redis-server": redis_version.removeprefix("v=")},
    )


def main() -> None:
    quick = "--quick" in sys.argv[1:]
    os.environ.setdefault("PYTHONHASHSEED", "0")
    publish(run(None, quick, environment({})))


if __name__ == "__main__":
    main()
