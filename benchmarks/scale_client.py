"""The load generator of the scale scenario: ``python -m benchmarks.scale_client``.

Opens ``--per-port`` event streams to each of ``--ports`` (the workers) with raw asyncio
protocols: one object per stream, no task, no HTTP library, and a minimal parse: lines starting
with ``data:`` give the event's sequence number and publish time (``time.time_ns()``), lines
starting with ``:`` are pings, anything else (ids, chunk sizes) is skipped. Every subscriber
receives the same bytes, so a parsed read is kept by its bytes and reused by the next stream
that reads the same: the generator stays far cheaper than the servers it measures.

Talks to the parent over stdin/stdout (one line each way, ``benchmarks.child``):

1. opens and closes a few streams per port (warms the workers up), prints ``WARM``;
2. on ``GO``: opens the streams, at most ``--parallel`` connecting at once, prints
   ``READY <json>`` once each got its response head (or the open deadline passed);
3. on ``IDLE``: starts counting pings; on ``PINGS``: prints what each stream got since then
   and how late each ping was (its arrival minus the previous write's arrival minus the
   interval), as histograms in ms;
4. on ``EXPECT <events> <timeout>``: waits until every stream has ``events`` events, prints
   ``DONE <json>``: deliveries per sequence number, the arrival of each event's last delivery,
   a histogram (ms) of publish to arrival over all deliveries, streams out of order or lost;
5. on ``STOP`` (or end of input): closes everything.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from benchmarks.child import read_command, run_client, say
from benchmarks.scale_apps import PATH
from benchmarks.stream_protocol import StreamProtocol

WARMUP_PER_PORT = 10
COMMAND_TIMEOUT = 900.0
CACHE_LIMIT = 4096
NS_PER_MS = 1_000_000

Parsed = tuple[tuple[tuple[int, int], ...], int, int]  # (seq, ts) pairs, pings, malformed


def parse(lines: bytes) -> Parsed:
    """The events (sequence number, publish time) and pings of complete lines."""
    events = []
    pings = malformed = 0
    for line in lines.split(b"\n"):
        if line.startswith(b"data:"):
            try:
                seq, ts = line[5:].split()
                events.append((int(seq), int(ts)))
            except ValueError:
                malformed += 1
        elif line.startswith(b":"):
            pings += 1
    return tuple(events), pings, malformed


class Load:
    """What all streams of this process share: the parse cache and the counters."""

    def __init__(self, ping_ns: int) -> None:
        self.ping_ns = ping_ns
        self.cache: dict[bytes, Parsed] = {}
        self.target = 1 << 62  # events each stream must get (set by EXPECT)
        self.complete = 0
        self.all_complete = asyncio.Event()
        self.streams: list[Stream] = []
        self.ping_late_ms: dict[int, int] = {}
        self.reset()

    def reset(self) -> None:
        self.deliveries: dict[int, int] = {}
        self.last_arrival: dict[int, int] = {}
        self.published: dict[int, int] = {}
        self.latency_ms: dict[int, int] = {}
        self.malformed = 0

    def count_ping(self, late_ms: int) -> None:
        self.ping_late_ms[late_ms] = self.ping_late_ms.get(late_ms, 0) + 1

    def start_pings(self) -> None:
        self.ping_late_ms = {}
        for stream in self.streams:
            stream.pings = 0


class Stream(StreamProtocol):
    __slots__ = (
        "disorder",
        "last_write",
        "load",
        "lost",
        "next_seq",
        "pings",
        "received",
        "tail",
    )

    def __init__(self, load: Load, request: bytes, ready: asyncio.Future[None]) -> None:
        super().__init__(request, ready)
        self.load = load
        self.tail = b""
        self.last_write = 0
        self.received = 0
        self.next_seq = 0
        self.disorder = 0
        self.pings = 0
        self.lost = False

    def data_received(self, data: bytes) -> None:
        now = time.time_ns()
        started = self.ready.done()
        body = self.body_of(data)
        if body is None:
            return
        if not started:  # the head: the stream's first write
            self.last_write = now
        data = body
        if self.tail:
            data, self.tail = self.tail + data, b""
        if not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            data, self.tail = data[:cut], data[cut:]
            if not data:
                return
        load = self.load
        parsed = load.cache.get(data)
        if parsed is None:
            if len(load.cache) >= CACHE_LIMIT:
                load.cache.clear()
            parsed = load.cache[data] = parse(data)
        events, pings, malformed = parsed
        if pings:
            self.pings += pings
            load.count_ping((now - self.last_write - load.ping_ns) // NS_PER_MS)
        self.last_write = now
        if malformed:
            load.malformed += malformed
        if not events:
            return
        deliveries, latency = load.deliveries, load.latency_ms
        for seq, ts in events:
            deliveries[seq] = deliveries.get(seq, 0) + 1
            load.last_arrival[seq] = now
            load.published[seq] = ts
            late = (now - ts) // NS_PER_MS
            latency[late] = latency.get(late, 0) + 1
            if seq != self.next_seq:
                self.disorder += 1
            self.next_seq = seq + 1
        before = self.received
        self.received += len(events)
        if before < load.target <= self.received:
            load.complete += 1
            if load.complete >= len(load.streams):
                load.all_complete.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("closed before the response started"))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def _request(port: int) -> bytes:
    return (
        f"GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n\r\n"
    ).encode()


async def open_streams(
    load: Load, ports: list[int], per_port: int, parallel: int, deadline: float
) -> tuple[list[Stream], dict[str, int]]:
    """Open ``per_port`` streams to each port, interleaved: the ready ones, and the failures
    by reason."""
    loop = asyncio.get_running_loop()
    semaphore = asyncio.Semaphore(parallel)
    requests = [_request(port) for port in ports]
    streams: list[Stream] = []

    async def one(index: int) -> None:
        port_index = index % len(ports)
        async with semaphore:
            ready: asyncio.Future[None] = loop.create_future()
            request = requests[port_index]
            _, stream = await loop.create_connection(
                lambda: Stream(load, request, ready), "127.0.0.1", ports[port_index]
            )
            try:
                await ready
            except BaseException:
                stream.close()
                raise
            streams.append(stream)

    tasks = [asyncio.ensure_future(one(i)) for i in range(per_port * len(ports))]
    done, pending = await asyncio.wait(tasks, timeout=deadline)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    failed: dict[str, int] = {}
    if pending:
        failed["no response head in time"] = len(pending)
    for task in done:
        error = task.exception()
        if error is not None:
            reason = _reason(error)
            failed[reason] = failed.get(reason, 0) + 1
    return streams, failed


def _reason(error: BaseException) -> str:
    """Why a stream did not open, short: the status line it got, or the error's type."""
    text = str(error)
    if text.startswith("HTTP/"):
        return text.split("\r\n", 1)[0]
    return type(error).__name__


async def _warm(ports: list[int], parallel: int) -> None:
    warm = Load(0)
    streams, _ = await open_streams(warm, ports, WARMUP_PER_PORT, parallel, 30.0)
    for stream in streams:
        stream.close()
    await asyncio.sleep(0.3)  # let the workers finish those streams before their baseline


async def _expect(load: Load, total: int, timeout: float) -> dict[str, object]:
    load.target = total
    load.complete = sum(1 for s in load.streams if s.received >= total)
    if load.complete >= len(load.streams):
        load.all_complete.set()
    waiter = asyncio.ensure_future(load.all_complete.wait())
    await asyncio.wait({waiter}, timeout=timeout)
    waiter.cancel()
    return {
        "streams": len(load.streams),
        "complete": load.complete,
        "deliveries": {str(k): v for k, v in load.deliveries.items()},
        "last_arrival": {str(k): v for k, v in load.last_arrival.items()},
        "published": {str(k): v for k, v in load.published.items()},
        "latency_ms": {str(k): v for k, v in load.latency_ms.items()},
        "disorder": sum(s.disorder for s in load.streams),
        "lost": sum(s.lost for s in load.streams),
        "malformed": load.malformed,
        "pings": sum(s.pings for s in load.streams),
    }


async def session(ports: list[int], per_port: int, parallel: int, ping: float) -> None:
    await _warm(ports, parallel)
    say("WARM")
    await _wait_for("GO")
    load = Load(int(ping * 1e9))
    started = time.monotonic()
    # A saturated worker accepts ever more slowly: the deadline turns that into a number.
    deadline = 120.0 + per_port * len(ports) / 100
    load.streams, failed = await open_streams(load, ports, per_port, parallel, deadline)
    say(
        "READY",
        {"opened": len(load.streams), "failed": failed, "seconds": time.monotonic() - started},
    )
    try:
        while True:
            command = await read_command(COMMAND_TIMEOUT) or ["STOP"]
            if command[0] == "IDLE":
                load.start_pings()
                say("IDLING")
            elif command[0] == "PINGS":
                counts: dict[int, int] = {}
                for stream in load.streams:
                    counts[stream.pings] = counts.get(stream.pings, 0) + 1
                say("PINGS", {"per_stream": counts, "late_ms": load.ping_late_ms})
                load.start_pings()
            elif command[0] == "EXPECT":
                say("DONE", await _expect(load, int(command[1]), float(command[2])))
            else:
                break
    finally:
        for stream in load.streams:
            stream.close()
        await asyncio.sleep(0.2)


async def _wait_for(word: str) -> None:
    command = await read_command(COMMAND_TIMEOUT)
    if command != [word]:
        raise SystemExit(f"expected {word!r}, got {' '.join(command)!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ports", required=True, help="comma-separated worker ports")
    parser.add_argument("--per-port", type=int, required=True)
    parser.add_argument("--parallel", type=int, default=256)
    parser.add_argument("--ping", type=float, required=True, help="the servers' ping interval")
    args = parser.parse_args()
    ports = [int(port) for port in args.ports.split(",")]
    run_client(session(ports, args.per_port, args.parallel, args.ping))


if __name__ == "__main__":
    main()
