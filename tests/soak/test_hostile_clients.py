"""Hostile clients, all at once, against one uvicorn process on a real Redis, while good
clients keep working.

The server runs ``tests/soak/hostile_app.py``: a broadcaster on Redis with the library's
defaults (``max_queue_bytes`` 1 MiB, ``max_topics`` 100, ``publish_timeout`` 2 s,
``send_timeout`` 30 s), ``overflow="drop_oldest"`` excepted, so that clients that stop
reading stay subscribed until ``send_timeout`` cuts them. For about 40 s, at the same time:

* **non-readers**: 100 subscribers (``SOAK_SCALE`` times) of ``huge`` and ``g:0`` set a 4 KiB
  receive buffer, read the response head and never read again;
* **huge events**: a 4 MiB event to ``huge``, then a burst of 5 x 2 MiB (10 MiB), then 3 MiB;
* **many topics**: the good readers follow 100 topics each (``max_topics``); 20 more clients
  follow 100 of 5,000 ``w:*`` topics each (half of them never read), and each of the 5,000
  topics gets an event; a request for 101 topics every 2 s must get a ``400``;
* **resume storms**: every 5 s, 40 clients reconnect within 0.3 s of each other with a
  ``Last-Event-ID`` from before 1,200 events on 20 topics; 10 read their whole replay, 30
  never read it and leave after 1 to 2 s with it unread (a RST). They run in a process of
  their own (``tests/soak/hostile_client.py``);
* **a Redis stall**: redis-server gets SIGSTOP for 6 s, then SIGCONT. Publishes meanwhile
  (from this process, and over HTTP through the server) must fail with the typed errors, or
  a ``503`` saying which, within ``publish_timeout``; once Redis answers again, each failed
  publish is retried with its idempotency key;
* **key squatting**: before the load, a client publishes over HTTP to a topic of its own with
  the idempotency keys the good publishers are about to use (they are guessable: a counter);
  keys belong to their topic, so no good publish is suppressed;
* **forged resumes**: every second, 5 clients open a stream with a ``Last-Event-ID`` from an
  epoch that never existed or from far in the future; each is answered (200, a gap) at once
  and read no replay.

Meanwhile 4 good readers (``g:0`` to ``g:99``) parse what they receive with the library's
decoder, and a thread asks ``GET /health`` every 100 ms. The test asserts that every message
(published first time or on retry) reached every good reader exactly once, in id order,
without a gap event (SIGSTOP loses nothing: the Redis reader resumes where it was), within
``GOOD_LATENCY_MAX`` outside the stall; that health kept answering; that the server's RSS
stayed within ``max_queue_bytes`` per client that does not read plus a constant; that every
non-reader was cut by ``send_timeout``; that once every client left, no stream, subscriber,
asyncio task or thread was left behind; and that the server logged nothing unexpected.

``pytest -m soak tests/soak/test_hostile_clients.py -v -s`` prints the figures; they are also
written to ``tests/artifacts/soak-hostile.json``.
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
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from benchmarks.processes import cpu_seconds, raise_fd_limit, read_line, rss_kib
from litestar_sse.broadcast import Broadcaster, RedisStreamBackend
from litestar_sse.broadcast._hub.backlog import DEFAULT_MAX_QUEUE_BYTES
from litestar_sse.broadcast.errors import (
    BackendUnavailableError,
    NotPublishedError,
    PublishOutcomeUnknownError,
)
from litestar_sse.codec import DecodedEvent, EventDecoder
from tests.polling import wait_until
from tests.processes import ROOT, free_port, start_listening
from tests.processes import stop as stop_process
from tests.redis_support import RedisProcess, unique_prefix
from tests.soak.conftest import record, scaled, soak_scale
from tests.soak.hostile_client import Attempt, open_silent, query

ARTIFACT = "soak-hostile.json"
HOST = "127.0.0.1"
MIB = 1 << 20

# -- sizes (SOAK_SCALE times) and the timeline ----------------------------------------------

NON_READERS = scaled(100, 10)
GOOD_READERS = 4
GOOD_TOPICS = [f"g:{index}" for index in range(100)]  # max_topics, exactly
SPREAD_TOPICS = scaled(5000, 500)
WIDE_READERS = scaled(10, 2)
WIDE_SILENT = scaled(10, 2)
WIDE_TOPICS = 100
STORM_READERS = scaled(10, 2)
STORM_SILENT = scaled(30, 3)
STORM_TOPICS = [f"r:{index}" for index in range(20)]
STORM_EVENTS = 60
"""Events per storm topic, of 1 KB: each resume replays 1,200 events."""
STORM_EVERY = 5.0
HUGE = [(6.0, [4 * MIB]), (10.0, [2 * MIB] * 5), (28.0, [3 * MIB])]
"""(seconds into the load, sizes of the events then published one after the other)."""

SEND_TIMEOUT = 30.0 if soak_scale() >= 1 else 10.0
"""The plugin's default at full size; 10 s for a short run (``SOAK_SCALE`` < 1)."""
PUBLISH_TIMEOUT = 2.0
"""``RedisStreamBackend``'s default ``publish_timeout``, the app's and this test's."""
WATCH_TIMEOUT = 10.0
"""``RedisStreamBackend``'s default ``watch_timeout``, the app's."""
STALL_AT, STALL = 16.0, 6.0
LOAD = max(STALL_AT + STALL + 8.0, HUGE[0][0] + SEND_TIMEOUT + 4.0)
"""Seconds of load: long enough for the non-readers to be cut by ``send_timeout``."""
STEADY_EVERY = 0.05
HTTP_EVERY = 0.25
SPREAD_OVER = 30.0
OVER_LIMIT_EVERY = 2.0
SQUATTED_STEADY = 400
"""Keys ``steady-0`` to ``steady-399`` are taken on ``k:squat`` before the load."""
SQUATTED_HTTP = 80
FORGED_EVERY, FORGED_AT_ONCE = 1.0, 5

# -- the bounds ------------------------------------------------------------------------------

RSS_CONSTANT = 64 * MIB
"""Beyond ``max_queue_bytes`` per client that does not read: the interpreter's own growth,
~250 connections and their streams, the huge events themselves (read from Redis, encoded
once, kept by the ``huge`` topic), replay pages in flight, allocator slack."""
GOOD_LATENCY_MAX = 5.0
"""From the call to ``publish`` to a good reader, outside the stall."""
HEALTH_LATENCY_MAX = 2.0
PUBLISH_SLACK = 1.0
"""A failed publish answers within ``publish_timeout`` plus this (this loop is busy)."""
RECOVERY = 3.0
"""Seconds after SIGCONT within which a publish or a subscription may still fail."""
NOT_PUBLISHED_503 = "503 Redis is unavailable: not published"
UNKNOWN_503 = "503 Redis did not answer: the event may have been published"


def position(event_id: str) -> tuple[int, int]:
    """The order of a Redis-backed id, ``<epoch>-<ms>-<n>``."""
    _, ms, n = event_id.split("-")
    return int(ms), int(n)


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50": statistics.median(ordered),
        "p99": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
        "max": ordered[-1],
        "samples": len(ordered),
    }


# -- the server ------------------------------------------------------------------------------


@dataclasses.dataclass
class HostileServer:
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def stats(self, *, collect: bool = False) -> dict[str, Any]:
        """``/stats``; with ``collect``, after a ``gc.collect()`` and a ``malloc_trim``."""
        params = {"gc": "1" if collect else "0"}
        response = httpx.get(f"{self.url}/stats", params=params, timeout=30)
        response.raise_for_status()
        return dict(response.json())

    def wait_for_stats(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float
    ) -> dict[str, Any]:
        """Poll ``/stats`` until ``predicate`` holds; the last stats either way."""
        deadline = time.monotonic() + timeout
        current = self.stats()
        while not predicate(current) and time.monotonic() < deadline:
            time.sleep(0.25)
            current = self.stats()
        return current

    def vm_hwm(self) -> int:
        """The peak RSS of the process, in bytes."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmHWM")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def serve(redis: RedisProcess, prefix: str, log_path: Path) -> Iterator[HostileServer]:
    port = free_port()
    command = [
        sys.executable, "-m", "uvicorn", "tests.soak.hostile_app:app",
        "--host", HOST, "--port", str(port), "--no-access-log",
        "--backlog", "4096", "--timeout-graceful-shutdown", "2",
    ]  # fmt: skip
    env = {**os.environ, "HOSTILE_REDIS_URL": redis.url, "HOSTILE_PREFIX": prefix}
    if SEND_TIMEOUT != 30.0:
        env["HOSTILE_SEND_TIMEOUT"] = str(SEND_TIMEOUT)
    process = start_listening(command, port, log_path, env=env, timeout=60)
    try:
        yield HostileServer(port, process, log_path)
    finally:
        stop_process(process)


class StormProcess:
    """``python -m tests.soak.hostile_client``: the resume storm, in a process of its own."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.soak.hostile_client"],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )  # fmt: skip

    def expect(self, word: str, timeout: float) -> str:
        line = read_line(self.process, timeout)
        assert line.startswith(word), f"storm client: expected {word!r}, got {line[:200]!r}"
        return line[len(word) :].strip()

    def go(self, settings: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(f"GO {json.dumps(settings)}\n".encode())
        self.process.stdin.flush()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


# -- clients ---------------------------------------------------------------------------------


@dataclasses.dataclass
class Received:
    at: float
    """``time.monotonic()`` when the chunk that completed the event arrived."""
    event: DecodedEvent


class Reader:
    """A client that reads everything of one subscription and parses it with the library's
    :class:`EventDecoder` (httpx undoes the chunked framing)."""

    def __init__(self, topics: list[str]) -> None:
        self.topics = topics
        self.status = 0
        self.headers: dict[str, str] = {}
        self.received: list[Received] = []
        self.ended = False
        self.error: str | None = None
        self.opened = asyncio.Event()

    async def run(self, client: httpx.AsyncClient) -> None:
        decoder = EventDecoder()
        try:
            async with client.stream("GET", f"/events?{query(self.topics)}") as response:
                self.status = response.status_code
                self.headers = {k.lower(): v for k, v in response.headers.items()}
                self.opened.set()
                async for chunk in response.aiter_raw():
                    now = time.monotonic()
                    self.received.extend(Received(now, event) for event in decoder.feed(chunk))
            self.ended = True
        except httpx.HTTPError as exc:
            self.error = repr(exc)
        finally:
            self.opened.set()

    def messages(self) -> list[DecodedEvent]:
        return [r.event for r in self.received if r.event.event == "message"]

    def others(self) -> list[DecodedEvent]:
        return [r.event for r in self.received if r.event.event != "message"]


@dataclasses.dataclass
class Publish:
    """One message: its first publish, and its retry if that failed."""

    kind: str  # steady, http, spread, huge
    key: str
    """Its idempotency key, and its data (huge events excepted)."""
    topic: str
    began: float = 0.0
    took: float = 0.0
    outcome: str = ""  # "ok", an exception's name, or "503 <detail>" over HTTP
    event_id: str | None = None
    retried_id: str | None = None
    retries: int = 0

    @property
    def final_id(self) -> str | None:
        return self.event_id or self.retried_id


# -- the scenario ----------------------------------------------------------------------------


class Scenario:
    def __init__(
        self,
        server: HostileServer,
        redis: RedisProcess,
        publisher: Broadcaster,
        client: httpx.AsyncClient,
    ) -> None:
        self.server = server
        self.redis = redis
        self.publisher = publisher
        self.client = client
        self.stop = asyncio.Event()
        self.publishes: list[Publish] = []
        self.in_flight: set[asyncio.Task[None]] = set()
        self.over_limit: list[tuple[float, int, str]] = []
        self.started = 0.0
        self.stall_start = self.stall_end = self.recovered_at = 0.0
        self.probe_id = ""
        """The first publish that succeeded after SIGCONT (before any retry)."""
        self.health: list[tuple[float, float, int]] = []
        self.rss: list[int] = []
        self.squatted: list[int] = []
        """The statuses of the key squatter's publishes."""
        self.forged: list[tuple[float, int, str]] = []
        """Forged resumes: how long each took to answer, its status and ``SSE-Gap``."""

    # -- publishing --------------------------------------------------------------------------

    async def _publish(self, item: Publish, data: str) -> None:
        item.began = time.monotonic()
        try:
            item.event_id = await self.publisher.publish(item.topic, data, idempotency_key=item.key)
            item.outcome = "ok"
        except BackendUnavailableError as exc:
            item.outcome = type(exc).__name__
        item.took = time.monotonic() - item.began

    async def _publish_http(self, item: Publish) -> None:
        item.began = time.monotonic()
        try:
            response = await self.client.post(
                f"/publish/{item.topic}", content=item.key, headers={"Idempotency-Key": item.key}
            )
        except httpx.HTTPError as exc:  # a hang or a dropped connection: both wrong
            item.outcome = f"error {exc!r}"
        else:
            if response.status_code == 201:
                item.event_id = response.json()["id"]
                item.outcome = "ok"
            elif response.status_code == 503:
                item.outcome = f"503 {response.json().get('detail')}"
            else:
                item.outcome = f"{response.status_code} {response.text}"
        item.took = time.monotonic() - item.began

    def _spawn(self, item: Publish) -> None:
        self.publishes.append(item)
        if item.kind == "http":
            task = asyncio.create_task(self._publish_http(item))
        else:
            task = asyncio.create_task(self._publish(item, item.key))
        self.in_flight.add(task)
        task.add_done_callback(self.in_flight.discard)

    async def steady(self) -> None:
        """An event every 50 ms, round the good topics, each publish a task of its own (so
        that the stall does not slow the schedule down)."""
        number, due = 0, time.monotonic()
        while not self.stop.is_set():
            self._spawn(Publish("steady", f"steady-{number}", GOOD_TOPICS[number % 100]))
            number += 1
            due += STEADY_EVERY
            await asyncio.sleep(max(0.0, due - time.monotonic()))

    async def over_http(self) -> None:
        """An event every 250 ms published through the server (``POST /publish``)."""
        number = 0
        while not self.stop.is_set():
            self._spawn(Publish("http", f"http-{number}", GOOD_TOPICS[number * 7 % 100]))
            number += 1
            await asyncio.sleep(HTTP_EVERY)

    async def spread(self) -> None:
        """One event to each of the ``w:*`` topics, in the first ``SPREAD_OVER`` seconds."""
        per_tick = max(1, round(SPREAD_TOPICS / (SPREAD_OVER / 0.1)))
        for start in range(0, SPREAD_TOPICS, per_tick):
            for index in range(start, min(start + per_tick, SPREAD_TOPICS)):
                self._spawn(Publish("spread", f"spread-{index}", f"w:{index}"))
            await asyncio.sleep(0.1)

    async def huge(self) -> None:
        for at, sizes in HUGE:
            await asyncio.sleep(max(0.0, self.started + at - time.monotonic()))
            for size in sizes:
                item = Publish("huge", f"huge-{len(self.publishes)}", "huge")
                self.publishes.append(item)
                await self._publish(item, "h" * size)

    async def stall(self) -> None:
        """SIGSTOP redis-server for ``STALL`` seconds, then SIGCONT; wait until a publish
        succeeds again, and for the publishes in flight to settle."""
        await asyncio.sleep(max(0.0, self.started + STALL_AT - time.monotonic()))
        with self.redis.stalled():
            self.stall_start = time.monotonic()
            await asyncio.sleep(STALL)
        self.stall_end = time.monotonic()
        while not self.probe_id:
            with contextlib.suppress(BackendUnavailableError):
                self.probe_id = await self.publisher.publish("probe", "after the stall")
        self.recovered_at = time.monotonic()
        await asyncio.sleep(PUBLISH_TIMEOUT + PUBLISH_SLACK)

    async def retry_failed(self) -> None:
        """Publish every message whose publish failed again, with the same idempotency key."""
        for item in [p for p in self.publishes if p.outcome not in ("", "ok")]:
            while item.retried_id is None:
                item.retries += 1
                assert item.retries <= 10, item
                if item.kind == "http":
                    response = await self.client.post(
                        f"/publish/{item.topic}",
                        content=item.key,
                        headers={"Idempotency-Key": item.key},
                    )
                    if response.status_code == 201:
                        item.retried_id = response.json()["id"]
                else:
                    with contextlib.suppress(BackendUnavailableError):
                        item.retried_id = await self.publisher.publish(
                            item.topic, item.key, idempotency_key=item.key
                        )
                if item.retried_id is None:
                    await asyncio.sleep(0.5)

    async def squat_keys(self) -> None:
        """Publish to ``k:squat`` with the keys the good publishers will use: a key that
        belonged to every topic at once would make their publishes return these events' ids
        and store nothing."""
        keys = [f"steady-{n}" for n in range(SQUATTED_STEADY)]
        keys += [f"http-{n}" for n in range(SQUATTED_HTTP)]
        for start in range(0, len(keys), 20):
            responses = await asyncio.gather(
                *(
                    self.client.post(
                        "/publish/k:squat", content="squat", headers={"Idempotency-Key": key}
                    )
                    for key in keys[start : start + 20]
                )
            )
            self.squatted += [response.status_code for response in responses]

    async def forged_resumes(self) -> None:
        """Resumes from ids that no history holds: an epoch that never was, a far future."""
        rng = random.Random(19)

        async def one(last_event_id: str) -> None:
            began = time.monotonic()
            headers = {"Last-Event-ID": last_event_id}
            query_ = query(GOOD_TOPICS[:20])
            async with self.client.stream("GET", f"/events?{query_}", headers=headers) as response:
                gap = response.headers.get("sse-gap", "")
                self.forged.append((time.monotonic() - began, response.status_code, gap))

        while not self.stop.is_set():
            ids = [
                f"{rng.getrandbits(40):x}-{rng.randrange(10**9)}" if n % 2 else f"0-{10**15 + n}"
                for n in range(FORGED_AT_ONCE)
            ]
            await asyncio.gather(*(one(i) for i in ids), return_exceptions=True)
            await asyncio.sleep(FORGED_EVERY)

    async def over_limit_requests(self) -> None:
        topics = [f"x:{index}" for index in range(101)]
        while not self.stop.is_set():
            began = time.monotonic()
            async with self.client.stream("GET", f"/events?{query(topics)}") as response:
                body = "" if response.status_code == 200 else (await response.aread()).decode()
            self.over_limit.append((time.monotonic() - began, response.status_code, body))
            await asyncio.sleep(OVER_LIMIT_EVERY)

    # -- watchers, in threads: their timings do not depend on this loop ----------------------

    def probe_health(self, stop: threading.Event) -> None:
        while not stop.is_set():
            began = time.monotonic()
            connection = http.client.HTTPConnection(HOST, self.server.port, timeout=30)
            try:
                connection.request("GET", "/health")
                response = connection.getresponse()
                response.read()
                status = response.status
            except OSError:
                status = 0
            finally:
                connection.close()
            self.health.append((began, time.monotonic() - began, status))
            stop.wait(0.1)

    def sample_rss(self, stop: threading.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError, RuntimeError):
                self.rss.append(rss_kib(self.server.pid) * 1024)
            stop.wait(0.1)


# -- the test --------------------------------------------------------------------------------


@pytest.mark.soak
@pytest.mark.timeout(300)
def test_hostile_clients_all_at_once(
    redis_process: Callable[..., RedisProcess], tmp_path: Path
) -> None:
    raise_fd_limit()
    redis = redis_process()
    prefix = unique_prefix()
    storm = StormProcess()
    try:
        with serve(redis, prefix, tmp_path / "server.log") as server:
            figures = asyncio.run(_run(server, redis, prefix, storm))
            log = server.log()
    finally:
        storm.kill()
    figures["log"] = _check_log(log)
    record(ARTIFACT, "hostile", figures)


async def _run(
    server: HostileServer, redis: RedisProcess, prefix: str, storm: StormProcess
) -> dict[str, Any]:
    began = time.monotonic()
    backend = RedisStreamBackend(redis.url, prefix=prefix, publish_timeout=PUBLISH_TIMEOUT)
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=20)
    timeout = httpx.Timeout(30.0, read=None)
    async with (
        Broadcaster(backend) as publisher,
        httpx.AsyncClient(base_url=server.url, limits=limits, timeout=timeout) as client,
    ):
        scenario = Scenario(server, redis, publisher, client)
        # The history the storm replays: 1,200 events after the id its clients resume from.
        resume_from = await publisher.publish("m", "before the history")
        seeded: list[str] = []
        for start in range(0, STORM_EVENTS, 10):
            seeded += await asyncio.gather(
                *(
                    publisher.publish(topic, f"{number}:{'r' * 1000}")
                    for number in range(start, start + 10)
                    for topic in STORM_TOPICS
                )
            )
        seeded.sort(key=position)
        await asyncio.to_thread(storm.expect, "READY", 60)

        # The baseline, once every route ran once and every path of the test did too.
        await client.get("/health")
        warm = Reader(["warm"])
        warming = asyncio.create_task(warm.run(client))
        await asyncio.wait_for(warm.opened.wait(), 30)
        await publisher.publish("warm", "up")
        await asyncio.sleep(0.5)
        warming.cancel()
        await asyncio.gather(warming, return_exceptions=True)
        assert [event.data for event in warm.messages()] == ["up"], warm.received
        await asyncio.to_thread(server.wait_for_stats, lambda s: s["open_streams"] == 0, 10)
        baseline = await asyncio.to_thread(server.stats, collect=True)
        assert (baseline["open_streams"], baseline["subscribers"]) == (0, 0), baseline
        rss_before = rss_kib(server.pid) * 1024

        figures = await _hostile(scenario, storm, resume_from, seeded, baseline, rss_before)
    figures["total_s"] = time.monotonic() - began
    return figures


async def _hostile(
    scenario: Scenario,
    storm: StormProcess,
    resume_from: str,
    seeded: list[str],
    baseline: dict[str, Any],
    rss_before: int,
) -> dict[str, Any]:
    server, client = scenario.server, scenario.client
    rng = random.Random(14)
    good = [Reader(GOOD_TOPICS) for _ in range(GOOD_READERS)]
    wide = [
        Reader([f"w:{i}" for i in sorted(rng.sample(range(SPREAD_TOPICS), WIDE_TOPICS))])
        for _ in range(WIDE_READERS)
    ]
    readers: list[asyncio.Task[None]] = []
    silent: list[socket.socket] = []
    watching = threading.Event()
    watchers = [
        threading.Thread(target=scenario.probe_health, args=(watching,), daemon=True),
        threading.Thread(target=scenario.sample_rss, args=(watching,), daemon=True),
    ]
    try:
        # -- the clients that stay: good and wide readers, non-readers -----------------------
        for reader in good + wide:
            readers.append(asyncio.create_task(reader.run(client)))
            await asyncio.wait_for(reader.opened.wait(), 30)
            assert reader.status == 200, (reader.status, reader.error)
        for index in range(NON_READERS):
            sock, status = await open_silent(server.port, f"/events?{query(['huge', 'g:0'])}")
            silent.append(sock)
            assert status == 200, status
            if index % 20 == 19:
                await asyncio.sleep(0.01)
        for _ in range(WIDE_SILENT):
            topics = [f"w:{i}" for i in rng.sample(range(SPREAD_TOPICS), WIDE_TOPICS)]
            sock, status = await open_silent(server.port, f"/events?{query(topics)}")
            silent.append(sock)
            assert status == 200, status
        subscribed = await asyncio.to_thread(
            server.wait_for_stats,
            lambda s: s["subscribers_by_topic"].get("huge") == NON_READERS,
            30,
        )
        assert subscribed["subscribers_by_topic"].get("huge") == NON_READERS, subscribed

        # -- the key squatter goes first ------------------------------------------------------
        await scenario.squat_keys()
        assert set(scenario.squatted) == {201}, Counter(scenario.squatted)

        # -- everything at once --------------------------------------------------------------
        for watcher in watchers:
            watcher.start()
        scenario.started = time.monotonic()
        cpu_before = cpu_seconds(server.pid)
        storm.go(
            {
                "port": server.port,
                "resume_from": resume_from,
                "expected": seeded,
                "topics": STORM_TOPICS,
                "readers": STORM_READERS,
                "silent": STORM_SILENT,
                "first_wave": scenario.started + 1.0,
                "until": scenario.started + LOAD - 3.0,
                "every": STORM_EVERY,
            }
        )
        load = [
            asyncio.create_task(scenario.steady()),
            asyncio.create_task(scenario.over_http()),
            asyncio.create_task(scenario.spread()),
            asyncio.create_task(scenario.over_limit_requests()),
            asyncio.create_task(scenario.huge()),
            asyncio.create_task(scenario.forged_resumes()),
        ]
        await scenario.stall()
        await scenario.retry_failed()
        await asyncio.sleep(max(0.0, scenario.started + LOAD - time.monotonic()))
        scenario.stop.set()
        await asyncio.wait_for(asyncio.gather(*load), 60)
        if scenario.in_flight:
            await asyncio.wait_for(asyncio.gather(*scenario.in_flight), 30)
        await scenario.retry_failed()  # any left (the checks allow none outside the stall)
        load_s = time.monotonic() - scenario.started
        cpu_s = cpu_seconds(server.pid) - cpu_before
        attempts = [
            Attempt(**a) for a in json.loads(await asyncio.to_thread(storm.expect, "RESULT", 60))
        ]

        # -- the readers catch up; the non-readers were cut by send_timeout ----------------------
        expected_good = _expected(scenario.publishes, {"steady", "http"})
        with contextlib.suppress(AssertionError):  # on a timeout, the checks tell more
            await wait_until(lambda: all(len(r.messages()) >= len(expected_good) for r in good), 30)
        cut = await asyncio.to_thread(
            server.wait_for_stats,
            lambda s: "huge" not in s["subscribers_by_topic"],
            max(5.0, scenario.started + HUGE[0][0] + SEND_TIMEOUT + 15 - time.monotonic()),
        )
        rss_peak = max([*scenario.rss, server.vm_hwm()])
    finally:
        scenario.stop.set()
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        for sock in silent:
            sock.close()
        watching.set()
        for watcher in watchers:
            if watcher.is_alive():
                watcher.join(timeout=30)

    # -- every client left: nothing stays behind -----------------------------------------------
    left = time.monotonic()
    await asyncio.to_thread(
        server.wait_for_stats,
        lambda s: (
            (s["open_streams"], s["subscribers"], s["tasks"], s["threads"])
            == (0, 0, baseline["tasks"], baseline["threads"])
        ),
        30,
    )
    settled_s = time.monotonic() - left
    after = await asyncio.to_thread(server.stats, collect=True)
    rss_after = rss_kib(server.pid) * 1024

    figures = _check(scenario, good, wide, attempts, seeded, expected_good)
    assert "huge" not in cut["subscribers_by_topic"], cut["subscribers_by_topic"]
    for name in ("open_streams", "subscribers"):
        assert after[name] == 0, (name, after[name])
    for name in ("tasks", "threads"):
        assert after[name] == baseline[name], (name, baseline[name], after[name])
    non_readers = NON_READERS + WIDE_SILENT + STORM_SILENT
    bound = DEFAULT_MAX_QUEUE_BYTES * non_readers + RSS_CONSTANT
    figures.update(
        load_s=load_s,
        server_cpu_s=cpu_s,
        rss_before_mib=rss_before / MIB,
        rss_peak_mib=rss_peak / MIB,
        rss_after_mib=rss_after / MIB,
        rss_bound_growth_mib=bound / MIB,
        clients_not_reading=non_readers,
        broadcast_counters=cut["broadcast"],
        baseline={key: baseline[key] for key in ("tasks", "threads", "python_threads")},
        after={key: after[key] for key in ("tasks", "threads", "python_threads")},
        settled_after_clients_left_s=settled_s,
    )
    # Forged resumes: each answered with a stream and a gap, never an error (outside the stall,
    # where a resume may find Redis unavailable: a 503).
    forged_ok = [f for f in scenario.forged if f[1] == 200]
    assert forged_ok, scenario.forged[:5]
    assert all(gap for _, _, gap in forged_ok), forged_ok[:5]
    assert {status for _, status, _ in scenario.forged} <= {200, 503}, scenario.forged[:5]
    figures.update(
        squatted_keys=len(scenario.squatted),
        forged_resumes=len(scenario.forged),
        forged_resume_s=summary([took for took, _, _ in forged_ok]),
    )
    rss = {k: round(figures[k], 1) for k in figures if k.startswith("rss_")}
    assert rss_peak - rss_before < bound, rss
    assert rss_after - rss_before < bound, rss
    return figures


def _expected(publishes: list[Publish], kinds: set[str]) -> list[str]:
    """The ids of the messages of ``kinds`` (published first time or on retry), in the
    order every subscriber of their topics must receive them."""
    items = [p for p in publishes if p.kind in kinds]
    assert all(p.final_id for p in items), [p for p in items if not p.final_id][:5]
    return sorted((p.final_id for p in items if p.final_id), key=position)


def _check(
    scenario: Scenario,
    good: list[Reader],
    wide: list[Reader],
    attempts: list[Attempt],
    seeded: list[str],
    expected_good: list[str],
) -> dict[str, Any]:
    publishes = scenario.publishes
    stall_start, stall_end = scenario.stall_start, scenario.stall_end
    probe = position(scenario.probe_id)

    # -- publishing through the stall ----------------------------------------------------------
    failed = [p for p in publishes if p.outcome != "ok"]
    assert failed, "the stall made no publish fail"
    for item in failed:
        # Only publishes that overlapped the stall failed, each within its deadline, with a
        # typed error (or the 503 saying which), and each was then stored by its retry.
        assert item.began < stall_end + RECOVERY, (item, stall_end)
        assert item.began + item.took > stall_start, (item, stall_start)
        assert item.took < PUBLISH_TIMEOUT + PUBLISH_SLACK, item
        assert item.kind != "huge", item
        if item.kind == "http":
            assert item.outcome in (NOT_PUBLISHED_503, UNKNOWN_503), item
        else:
            assert item.outcome in (NotPublishedError.__name__, PublishOutcomeUnknownError.__name__)
        assert item.retried_id is not None, item
        # "Not published" is certain: its retry stored it, after Redis resumed. (An "outcome
        # unknown" may have been stored when Redis ran what waited in its socket: its retry
        # then returned that event's id, before the probe's.)
        if item.outcome in (NotPublishedError.__name__, NOT_PUBLISHED_503):
            assert position(item.retried_id) > probe, item
    within_stall = [
        p for p in publishes if stall_start + 0.5 < p.began < stall_end - PUBLISH_TIMEOUT - 0.5
    ]
    assert within_stall, "no publish began during the stall"
    assert all(p.outcome != "ok" for p in within_stall), [
        p for p in within_stall if p.outcome == "ok"
    ][:3]

    # -- health, requests over max_topics ---------------------------------------------------------
    health = scenario.health
    assert len(health) > 50
    assert {status for _, _, status in health} == {200}, Counter(s for _, _, s in health)
    health_latency = [took for _, took, _ in health]
    assert max(health_latency) < HEALTH_LATENCY_MAX, sorted(health_latency)[-5:]
    assert scenario.over_limit
    for took, status, body in scenario.over_limit:
        assert status == 400, (status, body)
        assert "at most 100 topics" in body, body
        assert took < 2.0, took

    # -- the good readers: every message once, in order, no gap, in time ------------------------
    by_key = {p.key: p for p in publishes}
    latencies: list[float] = []
    since_stored: list[float] = []
    wall = time.time() - time.monotonic()
    quiet = (stall_start - GOOD_LATENCY_MAX, scenario.recovered_at + 1.0)
    for number, reader in enumerate(good):
        where = f"good reader {number}"
        assert reader.error is None, (where, reader.error)
        assert not reader.ended, where
        assert "sse-gap" not in reader.headers, (where, reader.headers)
        assert reader.others() == [], (where, reader.others()[:3])
        received = [event.id for event in reader.messages()]
        assert received == expected_good, (where, _diff(received, expected_good))
        for got in reader.received:
            sent = by_key[got.event.data]
            assert sent.final_id == got.event.id, (where, sent, got.event.id)
            if sent.event_id is not None and not quiet[0] < sent.began < quiet[1]:
                latencies.append(got.at - sent.began)
                # from when Redis stored it (its id is Redis' clock, in ms) to the reader
                since_stored.append(got.at + wall - position(got.event.id)[0] / 1000)
    assert latencies
    assert max(latencies) < GOOD_LATENCY_MAX, sorted(latencies)[-5:]

    # -- the wide readers: 100 of the 5,000 spread topics each ----------------------------------
    spread = [p for p in publishes if p.kind == "spread"]
    assert len(spread) == SPREAD_TOPICS
    for number, reader in enumerate(wide):
        where = f"wide reader {number}"
        assert reader.error is None, (where, reader.error)
        assert not reader.ended, where
        assert reader.others() == [], (where, reader.others()[:3])
        expected = _expected([p for p in spread if p.topic in set(reader.topics)], {"spread"})
        received = [event.id for event in reader.messages()]
        assert received == expected, (where, _diff(received, expected))

    # -- the resume storm -------------------------------------------------------------------------
    for attempt in attempts:
        # A connection of the storm waits for Redis at most watch_timeout; only one that
        # overlapped the stall may get a 503 or have its replay cut short.
        overlaps = attempt.began < stall_end + RECOVERY and (
            attempt.began + attempt.head_s > stall_start or attempt.ended_early
        )
        assert attempt.error is None, attempt
        assert attempt.status in (200, 503), attempt
        assert attempt.head_s < WATCH_TIMEOUT + 3.0, attempt
        if attempt.status == 503:
            assert overlaps, (attempt, stall_start, stall_end)
        if attempt.status == 200 and not attempt.silent:
            assert attempt.gap is None, attempt
            assert attempt.others == [], attempt
            assert attempt.prefix, attempt
            if attempt.ended_early:
                assert overlaps, (attempt, stall_start, stall_end)
            else:
                assert attempt.exact, attempt
    complete = [a for a in attempts if a.exact]
    waves = int((LOAD - 4.0) // STORM_EVERY) + 1
    assert len(complete) >= STORM_READERS * (waves - 3), (len(complete), waves)
    silent_200 = sum(1 for a in attempts if a.silent and a.status == 200)
    assert silent_200 >= STORM_SILENT * (waves - 3), (silent_200, waves)

    in_process = [p for p in failed if p.kind != "http"]
    return {
        "non_readers": NON_READERS,
        "good_readers": {"clients": GOOD_READERS, "topics_each": len(GOOD_TOPICS)},
        "wide_clients": {"reading": WIDE_READERS, "silent": WIDE_SILENT, "topics_each": 100},
        "spread_topics": SPREAD_TOPICS,
        "huge_events_mib": [size / MIB for _, sizes in HUGE for size in sizes],
        "storm": {
            "clients_reading": STORM_READERS,
            "clients_silent": STORM_SILENT,
            "replay_events": len(seeded),
            "resumes": len(attempts),
            "replays_read_whole": len(complete),
            "replays_ended_by_the_stall": sum(
                1 for a in attempts if a.ended_early and a.status == 200
            ),
            "silent_resumes": silent_200,
            "refused_503": sum(1 for a in attempts if a.status == 503),
            "head_max_s": max(a.head_s for a in attempts),
        },
        "over_limit_requests_400": len(scenario.over_limit),
        "stall_s": stall_end - stall_start,
        "first_publish_after_sigcont_s": scenario.recovered_at - stall_end,
        "publish_outcomes": {
            kind: dict(Counter(p.outcome for p in publishes if p.kind == kind))
            for kind in ("steady", "http", "spread", "huge")
        },
        "failed_publish_took_max_s": {
            "in_process": max((p.took for p in in_process), default=0.0),
            "http": max((p.took for p in failed if p.kind == "http"), default=0.0),
        },
        "unknown_stored_when_redis_resumed": sum(
            1
            for p in failed
            if p.outcome in (PublishOutcomeUnknownError.__name__, UNKNOWN_503)
            and p.retried_id is not None
            and position(p.retried_id) < probe
        ),
        "messages_to_each_good_reader": len(expected_good),
        "good_latency_s": summary(latencies),
        "good_latency_since_stored_s": summary(since_stored),
        "health_latency_s": summary(health_latency),
    }


def _diff(got: list[str], expected: list[str]) -> str:
    missing = [i for i in expected if i not in set(got)]
    extra = [i for i in got if i not in set(expected)]
    duplicates = len(got) - len(set(got))
    return (
        f"{len(got)} for {len(expected)}: missing {missing[:5]}, extra {extra[:5]}, "
        f"{duplicates} twice"
    )


EXPECTED_LINES = {
    "did_not_read": re.compile(r"SSE client did not read for ([\d.]+) s; closing the stream"),
    # the same cut, seen by the timer's check of what waits in the server's buffers
    "did_not_take": re.compile(r"SSE client did not take in ([\d.]+) s what was waiting for it"),
    "uvicorn_incomplete": re.compile(r"ASGI callable returned without completing response"),
    # one line when an outage starts, one when it ends (the reader retries in between)
    "redis_unavailable": re.compile(r"RedisStreamBackend: Redis at redis://\S+ is unavailable \("),
    "redis_available_again": re.compile(r"RedisStreamBackend: Redis at redis://\S+ is available"),
    "replay_interrupted": re.compile(r"Broadcast replay interrupted \(.*\); the stream ends"),
}


def _check_log(log: str) -> dict[str, int]:
    """The server logged what the scenario explains, and nothing else of note."""
    counts: Counter[str] = Counter()
    unexpected = []
    for line in log.splitlines():
        for name, pattern in EXPECTED_LINES.items():
            match = pattern.search(line)
            if match:
                counts[name] += 1
                if name in ("did_not_read", "did_not_take"):  # cut by send_timeout, not before
                    assert SEND_TIMEOUT <= float(match[1]) < SEND_TIMEOUT + 2, line
                break
        else:
            if re.search(r"Traceback|ERROR|CRITICAL|WARNING|Exception|Error", line):
                unexpected.append(line)
    assert unexpected == [], unexpected[:20]
    # every non-reader was cut by send_timeout (and no client that read)
    cuts = counts["did_not_read"] + counts["did_not_take"]
    assert NON_READERS <= cuts <= NON_READERS + WIDE_SILENT, counts
    # uvicorn's word for a response the app ended without finishing: none, since a cut
    # resets the connection and waits for uvicorn to see it lost (asgi/_transport.py)
    assert counts["uvicorn_incomplete"] == 0, counts
    return dict(counts)
