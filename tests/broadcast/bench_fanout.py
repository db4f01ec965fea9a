"""Fan-out benchmark: one in-process broadcaster, thousands of subscribers' ASGI streams.

Each subscriber is a real :class:`~litestar_sse.ASGIStreamingSSEResponse` streaming a
:class:`~litestar_sse.broadcast.Subscription`, whose ``send`` counts events and records when
they went out. Not collected by pytest. Run::

    .venv/bin/python tests/broadcast/bench_fanout.py [--subscribers 5000] [--rate 200] [--ping]

Prints deliveries per second at full speed, then latency percentiles (publish -> ASGI send)
at a steady publish rate.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
from array import array
from typing import Any

from litestar_sse import ASGIStreamingSSEResponse
from litestar_sse.broadcast import Broadcaster, MemoryBackend, Retention
from litestar_sse.message import make_item_encoder

SCOPE: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0", "spec_version": "2.3"},
    "http_version": "1.1",
    "method": "GET",
    "path": "/",
    "headers": [],
}
END = b"\r\n\r\n"


class Client:
    """The receiving end of one stream: counts events and logs when each send happened.

    The log is kept in arrays (no objects for the garbage collector), so that the harness
    does not add collector pauses of its own to the latencies it measures.
    """

    __slots__ = ("counts", "disconnect", "seen", "times")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.seen = 0
        self.times = array("d")
        self.counts = array("q")
        self.disconnect: asyncio.Future[None] = loop.create_future()

    async def send(self, message: Any) -> None:
        body = message.get("body", b"")
        if body:
            count = body.count(END)
            self.times.append(time.perf_counter())
            self.counts.append(count)
            self.seen += count

    async def receive(self) -> Any:
        await self.disconnect
        return {"type": "http.disconnect"}


FREEZE_GC = False


async def open_clients(
    broadcaster: Broadcaster, count: int, ping: bool
) -> tuple[list[Client], list[asyncio.Task[None]]]:
    loop = asyncio.get_running_loop()
    clients, tasks = [], []
    for _ in range(count):
        subscription = await broadcaster.open_subscription("bench")
        response = ASGIStreamingSSEResponse(
            iterator=subscription,
            item_encoder=make_item_encoder(),
            ping_interval=15.0 if ping else None,
        )
        client = Client(loop)
        clients.append(client)
        tasks.append(loop.create_task(response(SCOPE, client.receive, client.send)))
    await asyncio.sleep(0.1)  # every stream started and waiting
    if FREEZE_GC:
        # What a server tuned for many connections does after startup: the long-lived
        # objects leave the collector's generations, so full collections stay short.
        gc.freeze()
    return clients, tasks


async def close_clients(clients: list[Client], tasks: list[asyncio.Task[None]]) -> None:
    for client in clients:
        client.disconnect.set_result(None)
    await asyncio.gather(*tasks, return_exceptions=True)


async def wait_delivered(clients: list[Client], total: int, timeout: float = 120.0) -> None:
    deadline = time.perf_counter() + timeout
    while any(client.seen < total for client in clients):
        if time.perf_counter() > deadline:
            raise TimeoutError("not every event was delivered")
        await asyncio.sleep(0.002)


async def throughput(subscribers: int, events: int, burst: int, ping: bool) -> None:
    async with Broadcaster(MemoryBackend(retention=Retention(max_events=100))) as broadcaster:
        clients, tasks = await open_clients(broadcaster, subscribers, ping)
        started = time.perf_counter()
        for index in range(events):
            await broadcaster.publish("bench", index)
            if index % burst == burst - 1:
                await asyncio.sleep(0)
        await wait_delivered(clients, events)
        elapsed = time.perf_counter() - started
        sends = sum(len(client.times) for client in clients)
        await close_clients(clients, tasks)
    deliveries = subscribers * events
    print(
        f"throughput: {subscribers} subscribers x {events} events (bursts of {burst}) in "
        f"{elapsed:.2f} s = {deliveries / elapsed:,.0f} deliveries/s, "
        f"{sends / subscribers:.0f} sends per subscriber"
    )


async def latency(subscribers: int, rate: float, seconds: float, ping: bool) -> None:
    async with Broadcaster(MemoryBackend(retention=Retention(max_events=100))) as broadcaster:
        clients, tasks = await open_clients(broadcaster, subscribers, ping)
        published: list[float] = []
        started = time.perf_counter()
        total = int(rate * seconds)
        while len(published) < total:
            due = min(total, int((time.perf_counter() - started) * rate) + 1)
            while len(published) < due:
                published.append(time.perf_counter())
                await broadcaster.publish("bench", len(published))
            await asyncio.sleep(max(0.0, started + len(published) / rate - time.perf_counter()))
        await wait_delivered(clients, total)
        elapsed = time.perf_counter() - started
        await close_clients(clients, tasks)
    latencies: list[float] = []
    for client in clients:
        first = 0
        for sent_at, count in zip(client.times, client.counts, strict=True):
            latencies.extend(sent_at - published[i] for i in range(first, first + count))
            first += count
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000

    print(
        f"latency: {subscribers} subscribers, {rate:.0f} events/s for {seconds:.0f} s "
        f"({len(latencies) / elapsed:,.0f} deliveries/s): p50 {pct(50):.1f} ms, "
        f"p99 {pct(99):.1f} ms, max {latencies[-1] * 1000:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=5000)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--burst", type=int, default=10)
    parser.add_argument("--rate", type=float, default=100.0, help="events/s in the latency run")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--ping", action="store_true", help="streams with ping timers")
    parser.add_argument("--uvloop", action="store_true")
    parser.add_argument("--gc-freeze", action="store_true", help="gc.freeze() after setup")
    args = parser.parse_args()
    global FREEZE_GC
    FREEZE_GC = args.gc_freeze
    run: Any = asyncio.run
    if args.uvloop:
        import uvloop

        run = uvloop.run
    run(throughput(args.subscribers, args.events, args.burst, args.ping))
    run(latency(args.subscribers, args.rate, args.seconds, args.ping))


if __name__ == "__main__":
    main()
