"""Slow clients (connected, but no longer reading) under a real uvicorn, then granian.

Each one is cut after ``send_timeout``, whether the write that waits is an event, a slice of
a large one, or a ping, and the healthy clients served by the same process meanwhile get every
event, on time.
"""

from __future__ import annotations

import asyncio
import socket
import statistics
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from litestar_sse.codec._decoder import EventDecoder
from tests.e2e.live_server import Server, live_server
from tests.soak import slow_app
from tests.soak.conftest import record, scaled

ARTIFACT = "soak-slow-clients.json"


@pytest.fixture(scope="module", params=["uvicorn", "granian"])
def server(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Server]:
    name = request.param
    with live_server("tests.soak.slow_app:app", tmp_path_factory.mktemp(name), name) as server:
        yield server


class Healthy:
    """A client that reads ``/ticks`` for as long as it runs: sequence numbers and lateness."""

    def __init__(self) -> None:
        self.seqs: list[int] = []
        self.lateness: list[float] = []

    async def run(self, server: Server, stop: asyncio.Event) -> None:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        writer.write(f"GET /ticks HTTP/1.1\r\nHost: {server.host}\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        decoder = EventDecoder()
        try:
            while not stop.is_set():
                chunk = await reader.read(65536)
                assert chunk, "the server ended a healthy stream"
                now = time.time()
                # The body is chunked, one event per chunk: the chunk-size lines in between
                # read as lines of an unknown field, which the decoder ignores.
                for event in decoder.feed(chunk):
                    seq, sent = event.data.split()
                    self.seqs.append(int(seq))
                    self.lateness.append(now - float(sent))
        finally:
            writer.close()


def open_slow(server: Server, path: str) -> socket.socket:
    """Connect with a tiny receive buffer, read the response head, then never read again."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect((server.host, server.port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {server.host}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        byte = sock.recv(1)
        assert byte, "closed before the response head"
        head += byte
    assert head.startswith(b"HTTP/1.1 200"), head
    return sock


@pytest.mark.anyio
@pytest.mark.timeout(180)
async def test_slow_clients_are_cut_and_healthy_ones_are_unaffected(
    server: Server, request: pytest.FixtureRequest
) -> None:
    healthy_count, slow_count = scaled(50, 5), scaled(20, 2)
    mark = server.log_mark()
    stop_reading = asyncio.Event()
    healthy = [Healthy() for _ in range(healthy_count)]
    readers = [asyncio.create_task(client.run(server, stop_reading)) for client in healthy]
    await asyncio.sleep(1.0)  # everyone healthy is streaming

    keys = {kind: [uuid.uuid4().hex[:10] for _ in range(slow_count)] for kind in ("flood", "burst")}
    opened_at = time.time()
    slow = [
        await asyncio.to_thread(open_slow, server, f"/{kind}/{key}")
        for kind, kind_keys in keys.items()
        for key in kind_keys
    ]
    try:
        records = await _wait_for_cuts(server, [k for ks in keys.values() for k in ks])
    finally:
        stop_reading.set()
        await asyncio.gather(*readers)
        for sock in slow:
            sock.close()

    # Every slow client was cut once, send_timeout after the write that had to wait began:
    # for /flood an event; for /burst a 64 KiB slice of its 8 MiB event (uvicorn: it holds
    # one slice per stuck client) or, on a server that took the whole event into its own
    # buffers (granian), a ping after it.
    waited: dict[str, list[float]] = {}
    since_data: dict[str, list[float]] = {}
    for kind, kind_keys in keys.items():
        for key in kind_keys:
            entry = records[key]
            assert entry["on_disconnect"] == 1, (kind, entry)
            assert entry["send_started"] > entry["send_done"], (kind, entry)  # still waiting
            waited.setdefault(kind, []).append(entry["finally"] - entry["send_started"])
            if entry["last_send_done"] is not None:
                since_data.setdefault(kind, []).append(entry["finally"] - entry["last_send_done"])
    timeout, ping = slow_app.SEND_TIMEOUT, slow_app.PING_INTERVAL
    # A ping's send timeout counts from when the ping was due (so that pings never drift); on
    # a busy loop it starts a little late and gets that much less (70 ms seen under load).
    early = {"flood": 0.05, "burst": ping / 2}
    for kind, delays in waited.items():
        assert all(timeout - early[kind] <= d < timeout + 1 for d in delays), (kind, delays)
    for key in keys["burst"]:  # a ping after the whole event, or a slice of it
        entry = records[key]
        assert entry["send_bytes"] < 100 if entry["waiting"] else entry["send_bytes"] <= 65536
    assert all(records[key]["last_send_done"] is not None for key in keys["flood"])
    assert all(records[key]["send_bytes"] >= 60 * 1024 for key in keys["flood"])  # an event

    # The healthy clients got every event, in order, and nothing waited behind the slow ones.
    worst = 0.0
    for client in healthy:
        assert client.seqs == list(range(client.seqs[0], client.seqs[0] + len(client.seqs)))
        worst = max(worst, max(client.lateness))
    assert worst < 1.0, worst

    await asyncio.sleep(0.2)
    log = server.log(mark)
    assert log.count("SSE client did not read") == 2 * slow_count
    assert "Traceback" not in log
    figures = {
        "healthy_clients": healthy_count,
        "slow_clients": 2 * slow_count,
        "send_timeout_s": timeout,
        "ping_interval_s": ping,
        "cut_after_the_waiting_write_began_s": summary(waited),
        "cut_after_the_last_event_s": summary(since_data),
        "burst_waiting_on": sorted(
            {"ping" if records[key]["waiting"] else "slice" for key in keys["burst"]}
        ),
        "healthy_events": sum(len(c.seqs) for c in healthy),
        "healthy_lateness_s": {
            "median": statistics.median(x for c in healthy for x in c.lateness),
            "max": worst,
        },
        "seconds_from_open_to_last_cut": max(r["finally"] for r in records.values()) - opened_at,
    }
    record(ARTIFACT, request.node.callspec.params["server"], figures)


def summary(by_kind: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    return {
        kind: {"min": min(d), "median": statistics.median(d), "max": max(d)}
        for kind, d in by_kind.items()
    }


async def _wait_for_cuts(server: Server, keys: list[str]) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        while True:
            state = (await client.get("/state")).json()
            done = [state.get(key, {}).get("finally") is not None for key in keys]
            if all(done) or time.monotonic() > deadline:
                return {key: state.get(key, {}) for key in keys}
            await asyncio.sleep(0.2)
