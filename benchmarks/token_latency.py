"""Token-by-token latency: from the producer's ``yield`` to the client's decoder, over uvicorn.

``python -m benchmarks.token_latency``: a generator handler yields a token every 10 ms, as a
model would (typed chunk, an id, the app pinging and sending ``retry``), and a client on the
loopback reads it with the codec's decoder; each token carries the ``monotonic_ns()`` of its
yield (the clock is the same for both processes). A raw ASGI app that writes the same bytes
is the floor. Prints the median, 99th percentile and worst latency of each, and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec

from benchmarks.processes import stop_process
from litestar_sse.codec import EventDecoder

PACE = 0.01


class Chunk(msgspec.Struct):
    t: int
    text: str = " token"


def litestar_sse_app() -> Any:
    from litestar import Litestar, get

    from litestar_sse import ServerSentEventMessage, SSEConfig, SSEPlugin, event_stream

    @get("/tokens")
    @event_stream
    async def tokens(n: int) -> AsyncIterator[ServerSentEventMessage]:
        for i in range(n):
            await asyncio.sleep(PACE)
            yield ServerSentEventMessage(data=Chunk(time.monotonic_ns()), id=i)

    config = SSEConfig(retry=3000, ping_interval=0.005)
    return Litestar([tokens], plugins=[SSEPlugin(config)])


def raw_app() -> Any:
    encode = msgspec.json.encode

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        n = int(scope["query_string"].decode().split("=")[1])
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for i in range(n):
            await asyncio.sleep(PACE)
            body = b"id: %d\r\ndata: " % i + encode(Chunk(time.monotonic_ns())) + b"\r\n\r\n"
            await send({"type": "http.response.body", "body": body, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    return app


def serve(name: str) -> None:
    import uvicorn

    app = litestar_sse_app() if name == "litestar_sse" else raw_app()
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[3]), log_level="warning")


async def measure(url: str, n: int) -> list[float]:
    latencies: list[float] = []
    decoder = EventDecoder()
    async with (
        httpx.AsyncClient(timeout=30) as client,
        client.stream("GET", url, params={"n": n}) as response,
    ):
        async for chunk in response.aiter_raw():
            now = time.monotonic_ns()
            for event in decoder.feed(chunk):
                sent = msgspec.json.decode(event.data, type=Chunk).t
                latencies.append((now - sent) / 1e6)
    return latencies


def run(name: str, n: int) -> list[float]:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "benchmarks.token_latency", "--serve", name, str(port)]
    server = subprocess.Popen(command)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/tokens?n=1", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        return asyncio.run(measure(f"http://127.0.0.1:{port}/tokens", n))
    finally:
        stop_process(server)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=2000)
    args = parser.parse_args()
    results = {name: run(name, args.tokens) for name in ("raw", "litestar_sse")}
    print(f"{args.tokens} tokens, one every {PACE * 1000:.0f} ms; latency in ms")
    print(f"{'':14}{'median':>8}{'p99':>8}{'max':>8}")
    for name, values in results.items():
        ordered = sorted(values)
        p99 = ordered[int(len(ordered) * 0.99) - 1]
        print(f"{name:14}{statistics.median(ordered):8.3f}{p99:8.3f}{ordered[-1]:8.3f}")
    ratio = statistics.median(results["litestar_sse"]) / statistics.median(results["raw"])
    print(f"median ratio to the raw floor: {ratio:.2f}")


if __name__ == "__main__":
    main()
