"""The client of the end-to-end fan-out run: ``python -m benchmarks.fanout_client``.

Opens N event streams to ``benchmarks.fanout_server`` with raw asyncio protocols (one object
per stream, no task, no HTTP library) and talks to the parent over stdin/stdout:

1. opens the streams, at most ``--parallel`` connecting at once, and prints ``READY <json>``
   once every one got its response headers;
2. on ``EXPECT <total> <timeout>``: waits until every stream has received ``total`` events in
   all, then prints ``DONE <json>``: when the last one arrived, how many each stream got, and
   the latency percentiles of the phase;
3. on ``STOP`` (or end of input): closes everything.

Every stream counts the ``data:`` lines it receives. Each event's data is
``"<seq> <publish time>"`` on the machine's monotonic clock; a sample of the streams, spread
evenly over the connection order, turns every event it receives into a latency (receive time
minus publish time), so that the client stays much lighter than the server it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time

from benchmarks.child import read_command, run_client, say
from benchmarks.fanout_apps import PATH
from benchmarks.stream_protocol import StreamProtocol

LATENCY_SAMPLE = 500
CONNECT_TIMEOUT = 60.0
COMMAND_TIMEOUT = 600.0
_TIMESTAMP = re.compile(rb"data: \d+ (\d+\.\d+)")


class Stream(StreamProtocol):
    def __init__(self, request: bytes, ready: asyncio.Future[None], sample: bool) -> None:
        super().__init__(request, ready)
        self.sample = sample
        self.tail = b""  # an incomplete last line, kept for the next read
        self.seen = 0
        self.last_at = 0.0
        self.latencies: list[float] = []
        self.lost = False

    def data_received(self, data: bytes) -> None:
        body = self.body_of(data)
        if body is None:
            return
        data = body
        buffer = self.tail + data if self.tail else data
        cut = buffer.rfind(b"\n") + 1
        self.tail = buffer[cut:]
        if not cut:
            return
        complete = buffer[:cut]
        count = complete.count(b"data: ")
        if count:
            now = time.monotonic()
            self.seen += count
            self.last_at = now
            if self.sample:
                self.latencies.extend(now - float(ts) for ts in _TIMESTAMP.findall(complete))

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("closed before the response started"))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def _open(port: int, count: int, parallel: int) -> list[Stream]:
    loop = asyncio.get_running_loop()
    request = (
        f"GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n\r\n"
    ).encode()
    semaphore = asyncio.Semaphore(parallel)
    step = max(1, count // LATENCY_SAMPLE)
    streams: list[Stream] = []

    async def one(index: int) -> None:
        async with semaphore:
            ready: asyncio.Future[None] = loop.create_future()
            sample = index % step == 0
            _, stream = await loop.create_connection(
                lambda: Stream(request, ready, sample), "127.0.0.1", port
            )
            streams.append(stream)
            await ready

    await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(count))), CONNECT_TIMEOUT)
    return streams


def _percentile(ordered: list[float], p: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def _phase(streams: list[Stream], total: int, timeout: float) -> dict[str, object]:
    for stream in streams:
        stream.latencies = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(stream.seen >= total for stream in streams):
            break
        await asyncio.sleep(0.005)
    latencies = sorted(value for stream in streams for value in stream.latencies)
    seen = [stream.seen for stream in streams]
    return {
        "complete": min(seen) >= total,
        "received": sum(seen),
        "min_seen": min(seen),
        "last_at": max(stream.last_at for stream in streams),
        "lost": sum(stream.lost for stream in streams),
        "samples": len(latencies),
        "p50_ms": _percentile(latencies, 50) * 1000,
        "p99_ms": _percentile(latencies, 99) * 1000,
        "max_ms": (latencies[-1] if latencies else float("nan")) * 1000,
    }


async def session(port: int, count: int, parallel: int) -> None:
    started = time.monotonic()
    streams = await _open(port, count, parallel)
    say("READY", {"streams": len(streams), "seconds": time.monotonic() - started})
    try:
        while True:
            command = await read_command(COMMAND_TIMEOUT) or ["STOP"]
            if command[0] != "EXPECT":
                break
            say("DONE", await _phase(streams, int(command[1]), float(command[2])))
    finally:
        for stream in streams:
            stream.close()
        await asyncio.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--streams", type=int, required=True)
    parser.add_argument("--parallel", type=int, default=256)
    args = parser.parse_args()
    run_client(session(args.port, args.streams, args.parallel))


if __name__ == "__main__":
    main()
