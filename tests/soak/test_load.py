"""Load and churn against one real uvicorn process serving ``tests/soak/load_app.py``.

* ``test_every_stream_gets_every_ping``: 10,000 open streams (``SOAK_SCALE`` times), held by a
  client in another process, are all pinged every second, none of them late.
* ``test_churn_leaves_nothing_behind``: 50,000 connect/disconnect cycles, every way a client
  can go, leave no task, stream, descriptor, thread or memory behind, clean up every
  generator exactly once and log no error.

The figures (CPU, memory, pings, cycles per second) are printed (``pytest -s``) and written to
``tests/artifacts/soak-load.json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import http.client
import json
import os
import random
import re
import socket
import statistics
import struct
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.processes import cpu_seconds, read_line, rss_kib
from litestar_sse.codec._decoder import EventDecoder
from tests.processes import ROOT, free_port, start_listening, stop
from tests.soak import load_app
from tests.soak.conftest import record, scaled, soak_scale

ARTIFACT = "soak-load.json"
HOST = "127.0.0.1"


# -- the server ------------------------------------------------------------------------------


@dataclasses.dataclass
class LoadServer:
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def stats(self, *, trim: bool = False) -> dict[str, Any]:
        """``/stats`` of the app, after a ``gc.collect()`` (and a ``malloc_trim`` if ``trim``)
        in the server."""
        conn = http.client.HTTPConnection(HOST, self.port, timeout=60)
        try:
            conn.request("GET", "/stats?trim=1" if trim else "/stats")
            response = conn.getresponse()
            body = response.read()
        finally:
            conn.close()
        assert response.status == 200, body
        return dict(json.loads(body))

    def rss_kib(self) -> int:
        """VmRSS of the server process, read from outside (no gc, no request)."""
        return rss_kib(self.pid)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_stats(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float, interval: float = 0.25
    ) -> dict[str, Any]:
        """Poll ``/stats`` until ``predicate(stats)`` holds; the last stats either way."""
        deadline = time.monotonic() + timeout
        current = self.stats()
        while not predicate(current) and time.monotonic() < deadline:
            time.sleep(interval)
            current = self.stats()
        return current


@contextlib.contextmanager
def serve(log_path: Path, env: dict[str, str] | None = None) -> Iterator[LoadServer]:
    """A uvicorn with its defaults (here uvloop and httptools, as ``uvicorn[standard]`` users
    get), apart from a backlog deep enough for bursts of connections."""
    port = free_port()
    command = [
        sys.executable, "-m", "uvicorn", "tests.soak.load_app:app",
        "--host", HOST, "--port", str(port),
        "--backlog", "4096", "--timeout-graceful-shutdown", "2",
    ]  # fmt: skip
    process = start_listening(command, port, log_path, env={**os.environ, **(env or {})})
    try:
        yield LoadServer(port, process, log_path)
    finally:
        stop(process)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LoadServer]:
    """A fresh server per test."""
    with serve(tmp_path / "server.log") as live:
        yield live


# Left to themselves, the allocators keep freed memory in ways that move RSS by megabytes
# between two readings with the same live memory: pymalloc frees a 1 MiB arena only once its
# last object is gone (which arenas a few long-lived objects pin after a burst is chance), and
# glibc's malloc gives back only the top of its heaps. Python objects straight from malloc,
# and a ``malloc_trim(0)`` before each reading (``/stats?trim=1``), make RSS follow live
# memory: 5,000 cycles after a warm-up then move it by 0.1-0.9 %, against 0.5-6 % without.
STEADY_MALLOC = {"PYTHONMALLOC": "malloc"}


@pytest.fixture
def churn_server(tmp_path: Path) -> Iterator[LoadServer]:
    """A fresh server whose RSS tracks live memory (see ``STEADY_MALLOC``)."""
    with serve(tmp_path / "server.log", STEADY_MALLOC) as live:
        yield live


def problems_in_log(log: str) -> list[str]:
    """Lines of a server log that point at a bug: tracebacks, errors, warnings, 5xx answers."""
    bad = re.compile(r"Traceback|ERROR|CRITICAL|WARNING|Exception|HTTP/1\.1\" 5\d\d")
    return [line for line in log.splitlines() if bad.search(line)]


# -- 1: many open streams, all pinged ---------------------------------------------------------

STREAMS = scaled(10_000, minimum=100)
WINDOW = max(5.0, 10.0 * min(1.0, soak_scale()))
PING = load_app.PING_INTERVAL
# A stream's longest silence may pass the interval by this much: loop lag on a loaded 2-core
# machine, in the server and in the client holding every stream. A missed ping shows up as a
# silence of two intervals, above this.
GAP_TOLERANCE = 0.75


class IdleClient:
    """``python -m tests.soak.load_client``, driven line by line."""

    def __init__(self, port: int, streams: int, log: Path) -> None:
        argv = [sys.executable, "-m", "tests.soak.load_client", "--port", str(port)]
        argv += ["--streams", str(streams)]
        with log.open("wb") as err:
            self.process = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, cwd=ROOT
            )
        self.log = log

    def expect(self, word: str, timeout: float) -> Any:
        line = read_line(self.process, timeout)
        if not line.startswith(word):
            raise AssertionError(
                f"load client: expected {word!r}, got {line!r}\n{self.log.read_text()[-3000:]}"
            )
        rest = line[len(word) :].strip()
        return json.loads(rest) if rest else None

    def tell(self, word: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{word}\n".encode())
        self.process.stdin.flush()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.mark.timeout(300)
def test_every_stream_gets_every_ping(server: LoadServer, tmp_path: Path) -> None:
    client = IdleClient(server.port, STREAMS, tmp_path / "client.log")
    try:
        client.expect("WARM", 60)
        server.stats()  # the stats route itself warmed up too
        baseline = server.wait_for_stats(lambda s: s["open_streams"] == 0, timeout=10)
        rss_before = server.rss_kib()

        client.tell("GO")
        ready = client.expect("READY", 240)
        assert ready["errors"] == 0, ready
        assert ready["opened"] == STREAMS, ready

        cpu_start, client_cpu_start, t0 = (
            cpu_seconds(server.pid),
            cpu_seconds(client.process.pid),
            time.monotonic(),
        )
        time.sleep(WINDOW)
        cpu_end, client_cpu_end, t1 = (
            cpu_seconds(server.pid),
            cpu_seconds(client.process.pid),
            time.monotonic(),
        )
        rss_open = server.rss_kib()

        client.tell("STOP")
        result = client.expect("RESULT", 120)
        with_streams = server.stats()

        client.tell("CLOSE")
        client.expect("CLOSED", 120)
        client.process.wait(timeout=30)
    finally:
        client.kill()
    after = server.wait_for_stats(
        lambda s: s["open_streams"] == 0 and s["tasks"] <= baseline["tasks"], timeout=60
    )

    pings: list[int] = result["pings"]
    gaps: list[float] = result["gaps"]
    window: float = result["window"]
    expected = int(window / PING)
    worst = sorted(gaps)[-10:]
    figures = {
        "streams": STREAMS,
        "ping_interval_s": PING,
        "window_s": round(window, 2),
        "open_seconds": round(ready["seconds"], 2),
        "server_cpu_percent_of_core": round((cpu_end - cpu_start) / (t1 - t0) * 100, 1),
        "client_cpu_percent_of_core": round(
            (client_cpu_end - client_cpu_start) / (t1 - t0) * 100, 1
        ),
        "rss_before_kib": rss_before,
        "rss_open_kib": rss_open,
        "rss_per_stream_kib": round((rss_open - rss_before) / STREAMS, 2),
        "tasks_baseline": baseline["tasks"],
        "tasks_open": with_streams["tasks"],
        "tasks_per_stream": round((with_streams["tasks"] - baseline["tasks"]) / STREAMS, 2),
        "tasks_after": after["tasks"],
        "pings_expected": expected,
        "pings_min": min(pings),
        "pings_median": statistics.median(pings),
        "pings_max": max(pings),
        "streams_short_of_pings": sum(1 for p in pings if p < expected - 1),
        "gap_worst_s": max(gaps),
        "gap_p99_s": round(statistics.quantiles(gaps, n=100)[98], 3),
        "gap_median_s": round(statistics.median(gaps), 3),
        "gaps_worst_10": worst,
    }
    record(ARTIFACT, "streams_10k", figures)

    assert result["lost"] == 0, "the server closed streams during the window"
    assert len(pings) == STREAMS
    assert with_streams["open_streams"] == STREAMS
    # The send loop's task only: on uvicorn the disconnect watch is no task; nothing per ping.
    assert with_streams["tasks"] - baseline["tasks"] <= STREAMS, with_streams["tasks"]
    assert min(pings) >= expected - 1, (
        f"{figures['streams_short_of_pings']} streams got fewer than {expected - 1} pings"
    )
    assert max(gaps) <= PING + GAP_TOLERANCE, f"a stream went {max(gaps):.2f} s without a ping"
    assert after["open_streams"] == 0
    assert after["tasks"] <= baseline["tasks"], (baseline["tasks"], after["tasks"])
    assert problems_in_log(server.log()) == []


# -- 2: connect/disconnect churn ----------------------------------------------------------------

CYCLES = scaled(50_000, minimum=1_000)
WARMUP_CYCLES = scaled(5_000, minimum=3_000)
CONCURRENCY = 100
CYCLE_TIMEOUT = 20.0
MAX_FAILURES = 20  # then stop starting cycles: a server that hangs fails the test quickly
RSS_GROWTH = 1.05
# Sources spread over loopback addresses: each has its own ephemeral ports, so the TIME_WAIT
# sockets left by clients that close first never run a source address out of ports, even
# without tcp_tw_reuse.
SOURCES = [f"127.0.0.{i}" for i in range(2, 18)]
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)
LINGER_RST = struct.pack("ii", 1, 0)
EVENT_ROUTES = ("/events", "/sse", "/sync", "/idle")
TRACKED = ("events", "big", "sync", "sse")
BIG_READ = 256 * 1024  # bytes of the big event the client takes before going


@dataclasses.dataclass(frozen=True)
class Cycle:
    """One connection: where it goes, how far it reads and how it ends.

    ``read``: ``"connect"`` (no request), ``"partial"`` (part of the request head),
    ``"headers"`` (the response head), ``"events"`` (``events`` whole events) or ``"mid"``
    (part of a big event). ``close``: ``"rst"`` (SO_LINGER 0), ``"fin"`` (shutdown then
    close: the server sees the FIN first) or ``"fin_wait"`` (shutdown, then read until the
    server closes: it must, promptly).
    """

    route: str
    read: str
    close: str
    events: int = 0
    cut: float = 0.0  # the fraction of the request head "partial" sends


def plan(count: int, seed: int) -> list[Cycle]:
    rng = random.Random(seed)
    cycles = []
    for _ in range(count):
        kind = rng.choices(["incomplete", "headers", "events", "big"], [10, 28, 60, 2])[0]
        close = rng.choice(["rst", "fin", "fin_wait"])
        route = rng.choices(EVENT_ROUTES, [4, 3, 1, 2])[0]
        if kind == "incomplete":
            read = rng.choice(["connect", "partial", "partial"])
            cut = rng.random()
            cycles.append(Cycle(route, read, "rst" if close == "rst" else "fin", cut=cut))
        elif kind == "headers":
            cycles.append(Cycle(route, "headers", close))
        elif kind == "events":
            events = 1 if route == "/idle" else rng.randint(1, 4)
            cycles.append(Cycle(route, "events", close, events=events))
        else:
            # The client goes while the server is inside the send of a big event (a client
            # that read everything until the server closes is not what this checks).
            cycles.append(Cycle("/big", "mid", "rst" if close == "rst" else "fin"))
    return cycles


def request_for(route: str) -> bytes:
    return f"GET {route} HTTP/1.1\r\nHost: {HOST}\r\nAccept: text/event-stream\r\n\r\n".encode()


async def recv_until(
    sock: socket.socket, buffer: bytearray, done: Callable[[bytearray], bool]
) -> None:
    loop = asyncio.get_running_loop()
    while not done(buffer):
        data = await loop.sock_recv(sock, 65536)
        if not data:
            raise ConnectionError(f"server closed early after {len(buffer)} bytes")
        buffer += data


async def run_cycle(port: int, cycle: Cycle, source: str) -> None:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        sock.bind((source, 0))
        if cycle.close == "rst":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
        await loop.sock_connect(sock, (HOST, port))
        request = request_for(cycle.route)
        if cycle.read in ("connect", "partial"):
            if cycle.read == "partial":
                # At least one byte, never the blank line that ends the head.
                await loop.sock_sendall(sock, request[: 1 + int(cycle.cut * (len(request) - 4))])
        else:
            await loop.sock_sendall(sock, request)
            received = bytearray()
            await recv_until(sock, received, lambda b: b"\r\n\r\n" in b)
            head, _, body = bytes(received).partition(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise AssertionError(f"unexpected response head {head[:200]!r}")
            if cycle.read == "events":
                await read_events(sock, body, cycle.events)
            elif cycle.read == "mid":
                rest = bytearray(body)
                await recv_until(sock, rest, lambda b: len(b) >= BIG_READ)
                # The server is now writing the rest of the event (and the next): it waits
                # for this client, whose buffers are full, when the client goes.
                await asyncio.sleep(0.01)
        if cycle.close in ("fin", "fin_wait"):
            sock.shutdown(socket.SHUT_WR)
        if cycle.close == "fin_wait":
            while await loop.sock_recv(sock, 65536):
                pass  # the rest of what the server sent before it saw the FIN
    finally:
        sock.close()


async def read_events(sock: socket.socket, body: bytes, count: int) -> None:
    loop = asyncio.get_running_loop()
    # The body is chunked: the chunk-size lines read as lines of an unknown field, which the
    # decoder ignores.
    decoder = EventDecoder()
    seen = len(decoder.feed(body))
    while seen < count:
        data = await loop.sock_recv(sock, 65536)
        if not data:
            raise ConnectionError(f"server closed after {seen} events")
        seen += len(decoder.feed(data))


@dataclasses.dataclass
class ChurnRun:
    seconds: float
    failures: list[str]
    by_kind: Counter[str]


def churn(port: int, cycles: list[Cycle], concurrency: int) -> ChurnRun:
    """Run ``cycles``, ``concurrency`` at a time, in a fresh event loop of this process."""

    async def main() -> ChurnRun:
        failures: list[str] = []
        by_kind: Counter[str] = Counter()
        work = iter(enumerate(cycles))

        async def worker() -> None:
            for index, cycle in work:
                if len(failures) >= MAX_FAILURES:
                    return
                source = SOURCES[index % len(SOURCES)]
                try:
                    await asyncio.wait_for(run_cycle(port, cycle, source), CYCLE_TIMEOUT)
                except (OSError, AssertionError, asyncio.TimeoutError) as exc:
                    failures.append(f"#{index} {cycle}: {exc!r}")
                else:
                    by_kind[f"{cycle.route} {cycle.read}"] += 1

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return ChurnRun(time.monotonic() - started, failures, by_kind)

    return asyncio.run(main())


def settled(baseline: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
    """All back to ``baseline``: no stream open, no task, descriptor or thread more."""

    def check(stats: dict[str, Any]) -> bool:
        return (
            stats["open_streams"] == 0
            and stats["tasks"] <= baseline["tasks"]
            and stats["fds"] <= baseline["fds"]
            and stats["threads"] <= baseline["threads"]
        )

    return check


@pytest.mark.timeout(420)
def test_churn_leaves_nothing_behind(churn_server: LoadServer) -> None:
    server = churn_server
    idle = server.stats()
    warmup = churn(server.port, plan(WARMUP_CYCLES, seed=1), CONCURRENCY)
    assert warmup.failures == [], warmup.failures[:10]
    quiet = server.wait_for_stats(settled(idle), timeout=60)
    assert settled(idle)(quiet), (idle, quiet)
    time.sleep(1.0)  # what the last streams' cleanup left to the loop
    baseline = server.stats(trim=True)

    cycles = plan(CYCLES, seed=2)
    run = churn(server.port, cycles, CONCURRENCY)
    server.wait_for_stats(settled(baseline), timeout=60)
    time.sleep(1.0)
    after = server.stats(trim=True)
    counts = Counter(after["counts"]) - Counter(baseline["counts"])
    log_problems = problems_in_log(server.log())
    big_cycles = sum(1 for c in cycles if c.route == "/big")

    figures = {
        "cycles": CYCLES,
        "warmup_cycles": WARMUP_CYCLES,
        "concurrency": CONCURRENCY,
        "seconds": round(run.seconds, 2),
        "cycles_per_second": round(CYCLES / run.seconds, 1),
        "failures": len(run.failures),
        "cycle_kinds": dict(sorted(run.by_kind.items())),
        "closes": dict(Counter(c.close for c in cycles)),
        "rss_baseline_kib": baseline["rss_kib"],
        "rss_after_kib": after["rss_kib"],
        "rss_ratio": round(after["rss_kib"] / baseline["rss_kib"], 4),
        "rss_read_after": "gc.collect() and malloc_trim(0), PYTHONMALLOC=malloc"
        if after["malloc_trimmed"]
        else "gc.collect(), PYTHONMALLOC=malloc (no malloc_trim here)",
        "tasks_baseline": baseline["tasks"],
        "tasks_after": after["tasks"],
        "fds_baseline": baseline["fds"],
        "fds_after": after["fds"],
        "threads_baseline": baseline["threads"],
        "threads_after": after["threads"],
        "gc_objects_baseline": baseline["gc_objects"],
        "gc_objects_after": after["gc_objects"],
        "gc_garbage_after": after["gc_garbage"],
        "open_streams_after": after["open_streams"],
        "generators": dict(sorted(counts.items())),
        "big_cycles": big_cycles,
        "log_problem_lines": len(log_problems),
    }
    record(ARTIFACT, "churn", figures)

    assert run.failures == [], f"{len(run.failures)} cycles failed: {run.failures[:10]}"
    assert after["open_streams"] == 0
    assert after["tasks"] == baseline["tasks"], (baseline["tasks"], after["tasks"])
    assert after["fds"] == baseline["fds"], (baseline["fds"], after["fds"])
    assert after["threads"] == baseline["threads"], (baseline["threads"], after["threads"])
    assert after["rss_kib"] <= RSS_GROWTH * baseline["rss_kib"], figures
    assert after["gc_garbage"] == 0
    # The objects the gc tracks are back to what they were (the count comes back exactly
    # here): 1,000 more, one every 50 cycles at SOAK_SCALE=1, is a leak.
    assert after["gc_objects"] <= baseline["gc_objects"] + 1_000, figures
    for name in TRACKED:
        started = counts[f"{name}.started"]
        assert started > 0, f"no {name} generator started: the cycles do not reach it"
        assert counts[f"{name}.finally"] == started, (name, counts)
        assert counts[f"{name}.cleaned"] == started, (name, counts)
        assert counts[f"{name}.finally_elsewhere"] == 0, (name, counts)
    # Every /sse response lost its client (no stream ends by itself): on_disconnect ran once
    # for each.
    assert counts["sse.on_disconnect"] == counts["sse.responses"], counts
    # Most big streams were cut inside the send of an event, as intended.
    assert counts["big.cut_in_send"] >= big_cycles // 2, (counts["big.cut_in_send"], big_cycles)
    assert log_problems == [], log_problems[:20]
