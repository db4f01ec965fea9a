"""Scenario: the Python client, litestar_sse.client, against httpx-sse on the same bytes.

Two tables. Decoding: one fast stream, the same chunks handed to every client through httpx
(an in-memory transport, so the network and the server cost nothing and only the client's
own work is measured). Reconnecting: a real loopback server cuts the stream mid-event after
sending ``retry``; the time from the cut to the next request is the client's reconnect delay,
which should be the server's ``retry`` and no more.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx

from benchmarks.apps import FLOOR, OURS, Implementation
from benchmarks.report import Report, Row, Table

NAME = "client"
TITLE = "Scenario 6: the Python client, decoding and reconnecting"
DESCRIPTION = """
**Decoding**: a body of events shaped like a broadcast feed (`id`, `event`, one line of JSON
`data`) is cut into 16 KiB chunks and served by an in-memory httpx transport, so every client
reads the same chunks through the same httpx machinery and only its own work is measured.
`raw` is the floor a client built on httpx pays: `aiter_bytes()` fed to the package's
`EventDecoder`. `litestar_sse` is `litestar_sse.client.EventSource` (typed `Event` objects,
gap detection, resume bookkeeping); `httpx_sse` is httpx-sse's `aconnect_sse(...).aiter_sse()`.

**Reconnecting**: a loopback server sends `retry: R`, one event and half of the next, then
closes. The delay is measured on the server, from the close to the arrival of the next
request (carrying `Last-Event-ID`). `raw` is the server's `retry` itself, the ideal.
httpx-sse does not reconnect.
"""

CHUNK = 16 * 1024


def _body(events: int) -> list[bytes]:
    parts = [
        f'id: 5f0c2a91-{n}\nevent: tick\ndata: {{"n":{n},"text":"hello, world"}}\n\n'.encode()
        for n in range(events)
    ]
    body = b"".join(parts)
    return [body[i : i + CHUNK] for i in range(0, len(body), CHUNK)]


def _client(chunks: list[bytes]) -> httpx.AsyncClient:
    async def stream() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=stream())

    return httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://bench")


async def _read_raw(client: httpx.AsyncClient) -> int:
    from litestar_sse.codec import EventDecoder

    decoder, count = EventDecoder(), 0
    async with client.stream("GET", "/feed") as response:
        async for chunk in response.aiter_bytes():
            count += len(decoder.feed(chunk))
    return count


async def _read_ours(client: httpx.AsyncClient) -> int:
    from litestar_sse.client import EventSource

    count = 0
    async with EventSource("/feed", client=client, reconnect=False) as source:
        async for _ in source:
            count += 1
    return count


async def _read_httpx_sse(client: httpx.AsyncClient) -> int:
    from httpx_sse import aconnect_sse

    count = 0
    async with aconnect_sse(client, "GET", "/feed") as source:
        async for _ in source.aiter_sse():
            count += 1
    return count


READERS = {FLOOR: _read_raw, OURS: _read_ours, "httpx_sse": _read_httpx_sse}


def _spread(samples: list[float]) -> float | None:
    if len(samples) < 4:
        return None
    q = statistics.quantiles(samples, n=4)
    return (q[2] - q[0]) / statistics.median(samples)


async def _decoding(events: int, repetitions: int) -> Table:
    chunks = _body(events)
    samples: dict[str, list[float]] = {name: [] for name in READERS}
    for _ in range(repetitions):
        for name, read in READERS.items():  # interleaved: load drifts hit every reader alike
            async with _client(chunks) as client:
                started = time.perf_counter()
                count = await read(client)
                took = time.perf_counter() - started
            if count != events:
                raise RuntimeError(f"{name} decoded {count} events, not {events}")
            samples[name].append(took / events * 1e6)
    rows = []
    for name, values in samples.items():
        median = statistics.median(values)
        rows.append(
            Row(
                name,
                median,
                _spread(values),
                extra={"events/s": f"{1e6 / median:,.0f}"},
            )
        )
    return Table(
        f"{events:,} events from one fast stream (16 KiB chunks)",
        "µs/event",
        rows,
        extra_columns=["events/s"],
    )


async def _reconnect_delays(retry_ms: int, cuts: int) -> list[float]:
    from litestar_sse.client import EventSource

    closed_at: list[float] = []
    arrived_at: list[float] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        arrived_at.append(time.perf_counter())
        index = len(arrived_at)
        body = f"retry: {retry_ms}\nid: {index}\ndata: event {index}\n\nid: x\ndata: half".encode()
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
        head += b"Transfer-Encoding: chunked\r\n\r\n"
        writer.write(head + f"{len(body):x}\r\n".encode() + body + b"\r\n")
        await writer.drain()
        await asyncio.sleep(0.02)  # the client has read it: now cut, mid-event
        writer.transport.abort()
        closed_at.append(time.perf_counter())

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with EventSource(f"http://127.0.0.1:{port}/", min_delay=0.001) as source:
            async for _ in source:
                if len(arrived_at) > cuts:
                    break
    finally:
        server.close()
        await server.wait_closed()
    return [arrived - closed for closed, arrived in zip(closed_at, arrived_at[1:], strict=False)]


async def _reconnecting(retries_ms: tuple[int, ...], cuts: int) -> Table:
    rows = []
    for retry_ms in retries_ms:
        delays = [d * 1000 for d in await _reconnect_delays(retry_ms, cuts)]
        median = statistics.median(delays)
        rows += [
            Row(f"{FLOOR} (retry {retry_ms} ms)", float(retry_ms), note="the server's retry"),
            Row(
                f"{OURS} (retry {retry_ms} ms)",
                median,
                _spread(delays),
                extra={
                    "max ms": f"{max(delays):.1f}",
                    "x retry": f"{statistics.median(delays) / retry_ms:.2f}x",
                },
            ),
        ]
    rows.append(Row("httpx_sse", None, note="does not reconnect"))
    return Table(
        f"Reconnect delay after a cut, {cuts} cuts per retry value",
        "ms",
        rows,
        extra_columns=["max ms", "x retry"],
        digits=1,
    )


async def _run(quick: bool) -> list[Table]:
    if quick:
        return [await _decoding(20_000, 3), await _reconnecting((100,), 5)]
    return [await _decoding(200_000, 7), await _reconnecting((100, 500), 10)]


def run(impls: list[Implementation], quick: bool, env: dict[str, Any]) -> Report:
    del impls  # clients, not server implementations: every one is measured
    tables = asyncio.run(_run(quick))
    decoding = tables[0]
    ours, peer = decoding.value_of(OURS), decoding.value_of("httpx_sse")
    notes = []
    if ours and peer:
        notes.append(
            f"litestar_sse.client decodes at {peer / ours:.2f}x the speed of httpx-sse "
            "(events per second, same chunks, same run)."
        )
    return Report(NAME, TITLE, DESCRIPTION, quick, tables, notes=notes, environment=dict(env))
