"""In-process fan-out: N subscribers of one topic whose ASGI ``send`` only counts events.

Every subscriber is a whole request to the hub's app (see ``fanout_apps``), served by the same
event loop as the publisher, exactly as in a server process, minus the sockets. ``send``
appends the time and the number of events of each body chunk to two arrays: no object per
event, so the harness adds no garbage-collector work of its own to what it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import json
import time
from array import array
from typing import Any

from benchmarks.apps import Message
from benchmarks.asgi_harness import Lifespan
from benchmarks.child import run_loop
from benchmarks.fanout_apps import HUBS, Hub, http_scope

OPEN_TIMEOUT = 120.0
DELIVERY_TIMEOUT = 120.0
# Latencies are computed for this many subscribers, spread evenly over the subscription order
# (which is the order a publish wakes them in): enough for a p99, cheap to sort.
LATENCY_SAMPLE = 1000


class Client:
    """The receiving end of one stream."""

    __slots__ = ("counts", "disconnect", "requested", "seen", "times")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.seen = 0
        self.times = array("d")
        self.counts = array("q")
        self.requested = False
        self.disconnect: asyncio.Future[None] = loop.create_future()

    async def send(self, message: Message) -> None:
        body = message.get("body")
        if body:
            count = body.count(b"data:")
            if count:
                self.times.append(time.perf_counter())
                self.counts.append(count)
                self.seen += count

    async def receive(self) -> Message:
        if not self.requested:
            self.requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self.disconnect
        return {"type": "http.disconnect"}

    def reset_log(self) -> None:
        self.times = array("d")
        self.counts = array("q")


@dataclasses.dataclass
class Capacity:
    deliveries_per_s: float
    sends_per_subscriber: float


@dataclasses.dataclass
class Steady:
    deliveries_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    sends_per_subscriber: float
    gc_full_collections: int
    gc_longest_ms: float


@dataclasses.dataclass
class Sample:
    capacity: Capacity
    steady: Steady

    @classmethod
    def from_json(cls, text: str) -> Sample:
        raw = json.loads(text)
        return cls(Capacity(**raw["capacity"]), Steady(**raw["steady"]))


class GCPauses:
    """Full (generation 2) collections during a phase, and the longest one."""

    def __init__(self) -> None:
        self.count = 0
        self.longest = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.count += 1
            self.longest = max(self.longest, time.perf_counter() - self._started)

    def __enter__(self) -> GCPauses:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


async def _open(hub: Hub, count: int) -> tuple[list[Client], list[asyncio.Task[None]]]:
    loop = asyncio.get_running_loop()
    clients = [Client(loop) for _ in range(count)]
    tasks = [
        loop.create_task(hub.app(http_scope(), client.receive, client.send)) for client in clients
    ]
    deadline = time.perf_counter() + OPEN_TIMEOUT
    while hub.subscribers() < count:
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{hub.name}: {hub.subscribers()} of {count} subscribed")
        await asyncio.sleep(0.01)
    return clients, tasks


async def _close(hub: Hub, clients: list[Client], tasks: list[asyncio.Task[None]]) -> None:
    for client in clients:
        client.disconnect.set_result(None)
    pending = tasks
    if hub.listens_for_disconnect:
        _, pending = await asyncio.wait(tasks, timeout=5.0)
    for task in pending:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _delivered(clients: list[Client], total: int) -> float:
    """Wait until every client has seen ``total`` events; return when the last one did."""
    deadline = time.perf_counter() + DELIVERY_TIMEOUT
    while True:
        behind = [client for client in clients if client.seen < total]
        if not behind:
            return max(client.times[-1] for client in clients)
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{len(behind)} subscribers did not get every event in time")
        await asyncio.sleep(0.002)


async def capacity(hub: Hub, clients: list[Client], events: int, burst: int) -> Capacity:
    """Publish ``events`` in bursts, yielding to the loop between bursts, as fast as it goes."""
    seen = clients[0].seen
    for client in clients:
        client.reset_log()
    started = time.perf_counter()
    for index in range(events):
        await hub.publish(str(index))
        if index % burst == burst - 1:
            await asyncio.sleep(0)
    finished = await _delivered(clients, seen + events)
    sends = sum(len(client.times) for client in clients) / len(clients)
    return Capacity(len(clients) * events / (finished - started), sends)


async def steady(
    hub: Hub, clients: list[Client], rate: float, burst: int, seconds: float
) -> Steady:
    """Publish ``rate`` events/s, ``burst`` at a time, for ``seconds``; latency per delivery."""
    seen = clients[0].seen
    for client in clients:
        client.reset_log()
    total = int(rate * seconds) // burst * burst
    published = array("d")
    with GCPauses() as pauses:
        started = time.perf_counter()
        while len(published) < total:
            for _ in range(burst):
                published.append(time.perf_counter())
                await hub.publish(str(len(published)))
            due = started + len(published) / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
        finished = await _delivered(clients, seen + total)
    step = max(1, len(clients) // LATENCY_SAMPLE)
    latencies: list[float] = []
    for client in clients[::step]:
        first = 0
        for sent_at, count in zip(client.times, client.counts, strict=True):
            latencies.extend(sent_at - published[i] for i in range(first, first + count))
            first += count
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000

    return Steady(
        deliveries_per_s=len(clients) * total / (finished - started),
        p50_ms=pct(50),
        p99_ms=pct(99),
        max_ms=latencies[-1] * 1000,
        sends_per_subscriber=sum(len(client.times) for client in clients) / len(clients),
        gc_full_collections=pauses.count,
        gc_longest_ms=pauses.longest * 1000,
    )


@dataclasses.dataclass(frozen=True)
class Workload:
    subscribers: int
    capacity_events: int
    capacity_burst: int
    rate: float
    burst: int
    seconds: float


async def measure(name: str, freeze: bool, workload: Workload) -> Sample:
    """One run of one hub: open the subscribers, measure capacity, then the steady rate."""
    hub = HUBS[name]()
    gc.collect()
    async with Lifespan(hub.app):
        clients, tasks = await _open(hub, workload.subscribers)
        try:
            await asyncio.sleep(0.05)  # every stream waiting for its first event
            if freeze:
                # What a server with many long-lived connections does once they are open: the
                # objects that stay leave the collector's generations, so full collections
                # no longer walk every stream.
                gc.collect()
                gc.freeze()
            cap = await capacity(hub, clients, workload.capacity_events, workload.capacity_burst)
            rate = await steady(hub, clients, workload.rate, workload.burst, workload.seconds)
        finally:
            if freeze:
                gc.unfreeze()
            await _close(hub, clients, tasks)
    return Sample(cap, rate)


def main(argv: list[str] | None = None) -> None:
    """Measure in this fresh process and print one JSON line per run.

    The scenario runs this as a child so that the collector sees the heap of a server (the
    app, its streams), not that of the benchmark runner, which has every peer imported.
    """
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hub", required=True, choices=sorted(HUBS))
    parser.add_argument("--freeze", action="store_true")
    parser.add_argument("--workload", required=True, help="Workload as JSON")
    args = parser.parse_args(argv)
    workload = Workload(**json.loads(args.workload))
    sample = run_loop(measure(args.hub, args.freeze, workload))
    print("RESULT " + json.dumps(dataclasses.asdict(sample)), flush=True)


if __name__ == "__main__":
    main()
