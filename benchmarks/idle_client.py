"""Client of the idle-streams scenario: ``python -m benchmarks.idle_client``.

Talks to the parent over stdin/stdout, one line each way, so the parent can read the server's
/proc figures at exactly the right moments:

1. opens a few streams and closes them (warms the server up), prints ``WARM``;
2. on ``GO``: opens N streams, at most ``--parallel`` connecting at once, waits until each got
   its first event, prints ``READY <json>``;
3. on ``STOP``: prints ``RESULT <json>`` with the comments (pings) each stream received since
   READY, then closes everything.

One asyncio protocol object per stream, no task: the client must stay much lighter than the
servers it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import cast

from benchmarks.child import expect, run_client, say

WARMUP_STREAMS = 20
FIRST_EVENT_TIMEOUT = 20.0
COMMAND_TIMEOUT = 600.0


class Stream(asyncio.Protocol):
    def __init__(self, request: bytes, first: asyncio.Future[None]) -> None:
        self.request = request
        self.first = first
        self.transport: asyncio.Transport | None = None
        self.comments = 0
        self.last = b""  # last byte seen: a comment line may start right after a read boundary
        self.buffer = b""  # bytes until the first data field was seen
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport; they implement it.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        # Lines starting with ':' are comments: after the chunk-size line or after a blank
        # line, they are always preceded by '\n'; data lines start with 'data:'.
        self.comments += (self.last + data).count(b"\n:")
        self.last = data[-1:]
        if not self.first.done():
            self.buffer += data
            if b"data:" in self.buffer:
                self.first.set_result(None)
                self.buffer = b""

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if not self.first.done():
            self.first.set_exception(ConnectionError("closed before the first event"))

    @property
    def opened(self) -> bool:
        """Got its first event (not merely connected)."""
        return self.first.done() and not self.first.cancelled() and not self.first.exception()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def _open(port: int, semaphore: asyncio.Semaphore, streams: list[Stream]) -> None:
    loop = asyncio.get_running_loop()
    request = (
        f"GET /stream HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n\r\n"
    ).encode()
    async with semaphore:
        first: asyncio.Future[None] = loop.create_future()
        _, stream = await loop.create_connection(lambda: Stream(request, first), "127.0.0.1", port)
        streams.append(stream)
        await asyncio.wait_for(first, FIRST_EVENT_TIMEOUT)


async def _open_many(port: int, count: int, parallel: int, deadline: float) -> list[Stream]:
    """Open ``count`` streams; give up on those without a first event after ``deadline`` s.

    A server saturated by its own pings accepts new streams ever more slowly: the deadline
    turns that into a reported number instead of a run that never ends.
    """
    semaphore = asyncio.Semaphore(parallel)
    streams: list[Stream] = []
    tasks = [asyncio.ensure_future(_open(port, semaphore, streams)) for _ in range(count)]
    _, pending = await asyncio.wait(tasks, timeout=deadline)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return streams


async def session(port: int, count: int, parallel: int, deadline: float) -> None:
    warm = await _open_many(port, WARMUP_STREAMS, parallel, FIRST_EVENT_TIMEOUT)
    for stream in warm:
        stream.close()
    await asyncio.sleep(0.3)  # let the server finish those streams before its baseline
    say("WARM")
    await expect("GO", COMMAND_TIMEOUT)
    t0 = time.monotonic()
    connected = await _open_many(port, count, parallel, deadline)
    # Streams still waiting for their first event stay connected (the server holds them) but
    # are left out of the ping counts.
    streams = [s for s in connected if s.opened]
    at_ready = [s.comments for s in streams]
    ready_at = time.monotonic()
    say(
        "READY",
        {
            "opened": len(streams),
            "connected": len(connected),
            "failed": count - len(streams),
            "seconds": time.monotonic() - t0,
        },
    )
    await expect("STOP", COMMAND_TIMEOUT)
    window = time.monotonic() - ready_at
    pings = [s.comments - before for s, before in zip(streams, at_ready, strict=True)]
    say("RESULT", {"pings": pings, "window": window, "lost": sum(s.lost for s in streams)})
    for stream in connected:
        stream.close()
    await asyncio.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--streams", type=int, required=True)
    parser.add_argument("--parallel", type=int, default=256)
    parser.add_argument("--open-timeout", type=float, default=60.0)
    args = parser.parse_args()
    run_client(session(args.port, args.streams, args.parallel, args.open_timeout))


if __name__ == "__main__":
    main()
