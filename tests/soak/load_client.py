"""The client process of the 10,000-stream ping test: ``python -m tests.soak.load_client``.

Holds thousands of ``/idle`` streams with one asyncio protocol object each (no task per
stream, so the client stays much lighter than the server it checks) and records when every
ping arrives. Talks to the test over stdin/stdout, one line each way:

1. opens and closes a few streams (warms the server up), prints ``WARM``;
2. on ``GO``: opens N streams, at most ``--parallel`` connecting at once, waits until each got
   its first event, prints ``READY <json>``;
3. on ``STOP``: prints ``RESULT <json>``: per stream, the pings received since READY and the
   longest silence (between its first event or a ping and the next ping, or STOP) that ended
   after READY; the streams stay open;
4. on ``CLOSE``: closes every stream, prints ``CLOSED`` and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import time
from typing import cast

from benchmarks.child import expect, run_client, say

WARMUP_STREAMS = 20
FIRST_EVENT_TIMEOUT = 60.0
COMMAND_TIMEOUT = 900.0


class Stream(asyncio.Protocol):
    """One ``/idle`` stream: the time of its first event and of every ping after it."""

    __slots__ = ("buffer", "first", "last", "lost", "marks", "request", "transport")

    def __init__(self, request: bytes, first: asyncio.Future[None]) -> None:
        self.request = request
        self.first = first
        self.transport: asyncio.Transport | None = None
        self.last = b""  # the last byte of the previous read: a line may start right after it
        self.buffer = b""  # what came before the first event
        self.marks: list[float] = []  # first event, then one entry per ping
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        if not self.marks:
            self.buffer += data
            if b"data:" not in self.buffer:
                return
            self.marks.append(now)
            self.first.set_result(None)
            data, self.buffer = self.buffer.partition(b"data:")[2], b""
        # Only pings start a line with ':' (chunk-size lines are hex, events start "data:").
        pings = (self.last + data).count(b"\n:")
        self.last = data[-1:]
        self.marks.extend([now] * pings)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if not self.first.done():
            self.first.set_exception(ConnectionError("closed before the first event"))

    def window(self, start: float, end: float) -> tuple[int, float]:
        """Pings received in ``[start, end]`` and the longest silence that ended in it."""
        marks = self.marks
        pings = sum(1 for t in marks[1:] if start <= t <= end)
        gaps = [b - a for a, b in itertools.pairwise(marks) if b >= start]
        gaps.append(end - marks[-1])  # a stream whose pings stopped shows a trailing silence
        return pings, max(gaps)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def _open(port: int, semaphore: asyncio.Semaphore, streams: list[Stream]) -> None:
    loop = asyncio.get_running_loop()
    request = f"GET /idle HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    async with semaphore:
        first: asyncio.Future[None] = loop.create_future()
        _, stream = await loop.create_connection(lambda: Stream(request, first), "127.0.0.1", port)
        streams.append(stream)
        await asyncio.wait_for(first, FIRST_EVENT_TIMEOUT)


async def _open_many(port: int, count: int, parallel: int) -> tuple[list[Stream], list[str]]:
    semaphore = asyncio.Semaphore(parallel)
    streams: list[Stream] = []
    tasks = [asyncio.ensure_future(_open(port, semaphore, streams)) for _ in range(count)]
    results = await asyncio.gather(*tasks, return_exceptions=True)
    errors = [repr(r) for r in results if isinstance(r, BaseException)]
    return streams, errors


async def session(port: int, count: int, parallel: int) -> None:
    warm, _ = await _open_many(port, WARMUP_STREAMS, parallel)
    for stream in warm:
        stream.close()
    await asyncio.sleep(0.5)  # let the server finish those before the test reads its baseline
    say("WARM")
    await expect("GO", COMMAND_TIMEOUT)
    started = time.monotonic()
    streams, errors = await _open_many(port, count, parallel)
    ready = time.monotonic()
    opened = [s for s in streams if s.marks]
    say(
        "READY",
        {
            "opened": len(opened),
            "errors": len(errors),
            "first_errors": sorted(set(errors))[:5],
            "seconds": ready - started,
        },
    )
    await expect("STOP", COMMAND_TIMEOUT)
    stop = time.monotonic()
    windows = [s.window(ready, stop) for s in opened]
    say(
        "RESULT",
        {
            "window": stop - ready,
            "pings": [pings for pings, _ in windows],
            "gaps": [round(gap, 4) for _, gap in windows],
            "lost": sum(s.lost for s in opened),
        },
    )
    await expect("CLOSE", COMMAND_TIMEOUT)
    for stream in streams:
        stream.close()
    await asyncio.sleep(0.2)
    say("CLOSED")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--streams", type=int, required=True)
    parser.add_argument("--parallel", type=int, default=256)
    args = parser.parse_args()
    run_client(session(args.port, args.streams, args.parallel))


if __name__ == "__main__":
    main()
