"""Faults on real servers: a restart under load, Redis going away, a network cut without FIN.

Every server is a uvicorn subprocess serving ``tests/soak/fault_app.py``; Redis is a real
``redis-server``; clients are raw asyncio connections (``tests/soak/fault_client.py``).

* ``test_restart_loses_nothing``: 1,000 broadcast subscribers (``SOAK_SCALE`` times) and a
  steady publisher; the server gets SIGTERM and comes back on the same port. Every client sees
  the shutdown event and a clean end of its body, reconnects after ``retry`` with
  ``Last-Event-ID`` and ends up with exactly the published ids, in order, without a gap.
* ``test_redis_outage_end_to_end``: two servers on one persistent Redis, subscribers on both,
  publishing over HTTP; Redis stops for a few seconds. Publishes and new subscriptions get a
  503 meanwhile, open streams keep pinging, and every event whose publish succeeded reaches
  every subscriber exactly once, in order.
* ``test_network_cut_without_fin``: the client in a network namespace behind a veth pair whose
  link is cut silently. With ``send_timeout``, a stream that sends data and one that only
  pings are both cut: what waits in the server's buffers is not taken by the client within
  ``send_timeout`` (``asgi/_transport.py``), and the connection is reset, so no socket is left.
  A server's listening socket with ``TCP_USER_TIMEOUT`` (:func:`litestar_sse.listening_socket`)
  makes the kernel close such connections too. Needs root and iproute2, and fails (never
  skips) without them.

The figures are printed (``pytest -s``) and written to ``tests/artifacts/soak-faults.json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from benchmarks.processes import raise_fd_limit
from litestar_sse import listening_socket
from litestar_sse.broadcast import Broadcaster, RedisStreamBackend
from tests.polling import wait_until
from tests.processes import ROOT, free_port
from tests.processes import stop as stop_process
from tests.redis_support import RedisProcess, unique_prefix
from tests.soak.conftest import record, scaled
from tests.soak.fault_client import Event, EventStream

ARTIFACT = "soak-faults.json"
APP = "tests.soak.fault_app:app"
TOPIC = "soak"


# -- servers ---------------------------------------------------------------------------------


class Server:
    """``uvicorn tests.soak.fault_app:app`` in a subprocess, output appended to ``log``."""

    def __init__(
        self,
        host: str,
        port: int,
        log: Path,
        env: dict[str, str],
        *,
        sock: socket.socket | None = None,
        graceful_timeout: int = 10,
    ) -> None:
        self.host, self.port, self.log = host, port, log
        self.graceful_timeout = graceful_timeout
        self.url = f"http://{host}:{port}"
        self.env = {**os.environ, **env}
        self.sock = sock
        self.process: subprocess.Popen[bytes] | None = None
        self.log_from = 0

    def start(self, timeout: float = 60.0) -> float:
        """Start it; return the seconds until it answered ``/stats``."""
        command = [sys.executable, "-m", "uvicorn", APP, "--no-access-log"]
        command += ["--backlog", "4096", "--timeout-graceful-shutdown", str(self.graceful_timeout)]
        pass_fds: tuple[int, ...] = ()
        if self.sock is not None:
            # uvicorn's own --fd: the listening socket made by the test, options and all.
            command += ["--fd", str(self.sock.fileno())]
            pass_fds = (self.sock.fileno(),)
        else:
            command += ["--host", self.host, "--port", str(self.port)]
        self.log_from = self.log.stat().st_size if self.log.exists() else 0
        began = time.monotonic()
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                pass_fds=pass_fds,
            )  # fmt: skip
        while time.monotonic() - began < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited:\n{self.output()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/stats", timeout=2).status_code == 200:
                    return time.monotonic() - began
            time.sleep(0.02)
        raise RuntimeError(f"the server did not start:\n{self.output()}")

    def stats(self) -> dict[str, Any]:
        response = httpx.get(f"{self.url}/stats", timeout=10)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def output(self) -> str:
        """What this run of the server logged."""
        with self.log.open("rb") as log:
            log.seek(self.log_from)
            return log.read().decode(errors="replace")

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        stop_process(process, timeout=15)


def assert_clean_exit(server: Server) -> None:
    """uvicorn shut down gracefully: it logs so, then re-raises the signal it got (so its
    exit status is "killed by SIGTERM", by design), and nothing went wrong on the way."""
    assert server.process is not None
    output = server.output()
    assert server.process.returncode == -signal.SIGTERM, (server.process.returncode, output)
    assert "Application shutdown complete." in output, output[-3000:]
    assert "Finished server process" in output, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    assert "ERROR" not in output, output[-3000:]


async def wait_for_exit(process: subprocess.Popen[bytes], timeout: float) -> float:
    """Seconds until ``process`` exits (polled: a child process has no event to wait on)."""
    began = time.monotonic()
    while process.poll() is None:
        if time.monotonic() - began > timeout:
            raise AssertionError(f"the server did not exit within {timeout} s")
        await asyncio.sleep(0.005)
    return time.monotonic() - began


# -- 1. shutdown, restart and resume under load ------------------------------------------------


RATE = 10.0
"""Events per second of the steady publisher."""
RETRY_MS = 1000
GRACE = 5.0


class EventLog:
    """What a client of ``/events`` received: the ids of the messages, and the other events
    (the shutdown event; a gap event would land here)."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.others: list[Event] = []

    def on_event(self, event: Event) -> None:
        if event.event == "message":
            assert event.id is not None
            self.ids.append(event.id)
        else:
            self.others.append(event)


class Follower(EventLog):
    """A browser's ``EventSource`` on ``/events``: reconnects ``retry`` ms after its stream
    ends (or a connection attempt fails), with ``Last-Event-ID`` = the last id it received."""

    def __init__(self, port: int) -> None:
        super().__init__()
        self.port = port
        self.responses: list[EventStream] = []
        self.sent_ids: list[str | None] = []
        """The Last-Event-ID of each response."""
        self.attempted_at: list[float] = []
        self.opened_at: list[float] = []
        """``time.monotonic()`` when each response's request was sent, and its head came."""
        self.failed_attempts = 0
        self.retry = 3.0

    @property
    def last_id(self) -> str | None:
        return self.ids[-1] if self.ids else None

    def streams_since(self, since: float) -> int:
        """Streams (200 responses) requested after ``since``."""
        return sum(
            1
            for response, at in zip(self.responses, self.attempted_at, strict=True)
            if response.status == 200 and at > since
        )

    def on_event(self, event: Event) -> None:
        if event.retry is not None:
            self.retry = event.retry / 1000
        super().on_event(event)

    async def run(self) -> None:
        while True:
            last_id = self.last_id
            stream = EventStream(
                "127.0.0.1", self.port, f"/events?topic={TOPIC}",
                last_event_id=last_id, on_event=self.on_event,
            )  # fmt: skip
            attempted_at = time.monotonic()
            try:
                await stream.open()
            except (OSError, asyncio.TimeoutError):
                self.failed_attempts += 1
                stream.close()
                await asyncio.sleep(self.retry)
                continue
            self.responses.append(stream)
            self.sent_ids.append(last_id)
            self.attempted_at.append(attempted_at)
            self.opened_at.append(time.monotonic())
            try:
                while await stream.read():
                    pass
            except OSError:
                pass
            finally:
                stream.close()
            await asyncio.sleep(self.retry)


async def _restart_under_load(
    redis_url: str, prefix: str, port: int, log: Path, clients: int
) -> dict[str, Any]:
    env = {
        "FAULT_REDIS_URL": redis_url,
        "FAULT_PREFIX": prefix,
        "FAULT_RETRY_MS": str(RETRY_MS),
        "FAULT_GRACE": str(GRACE),
    }
    first = Server("127.0.0.1", port, log, env)
    second = Server("127.0.0.1", port, log, env)
    followers = [Follower(port) for _ in range(clients)]
    tasks: list[asyncio.Task[None]] = []
    published: list[str] = []
    stop_publishing = asyncio.Event()
    figures: dict[str, Any] = {"clients": clients, "publish_rate": RATE}
    try:
        figures["first_start_s"] = await asyncio.to_thread(first.start)
        began = time.monotonic()
        for index, follower in enumerate(followers):
            tasks.append(asyncio.create_task(follower.run()))
            if index % 100 == 99:
                await asyncio.sleep(0.02)
        await wait_until(lambda: all(f.streams_since(0) == 1 for f in followers), timeout=120)
        figures["all_open_s"] = time.monotonic() - began

        async with Broadcaster(RedisStreamBackend(redis_url, prefix=prefix)) as publisher:

            async def publish_steadily() -> None:
                for number in itertools.count():
                    if stop_publishing.is_set():
                        return
                    published.append(await publisher.publish(TOPIC, str(number)))
                    await asyncio.sleep(1 / RATE)

            publishing = asyncio.create_task(publish_steadily())
            await asyncio.sleep(1.5)

            assert first.process is not None
            signalled = time.monotonic()
            first.process.send_signal(signal.SIGTERM)
            figures["shutdown_s"] = await wait_for_exit(first.process, 30)
            exited = time.monotonic()
            figures["published_before_exit"] = len(published)

            figures["restart_s"] = await asyncio.to_thread(second.start)
            ready = time.monotonic()
            await wait_until(
                lambda: all(f.streams_since(exited) == 1 for f in followers), timeout=120
            )
            figures["all_back_after_signal_s"] = time.monotonic() - signalled
            figures["all_back_after_ready_s"] = time.monotonic() - ready
            back = sorted(f.opened_at[-1] - ready for f in followers)
            figures["back_after_ready_p50_s"] = back[len(back) // 2]
            figures["back_after_ready_p90_s"] = back[len(back) * 9 // 10]
            latency = sorted(f.opened_at[-1] - f.attempted_at[-1] for f in followers)
            figures["resume_request_p50_s"] = latency[len(latency) // 2]
            figures["resume_request_max_s"] = latency[-1]

            await asyncio.sleep(1.5)
            stop_publishing.set()
            await publishing
            last = published[-1]
            # on a timeout, the checks below tell what is missing
            with contextlib.suppress(AssertionError):
                await wait_until(lambda: all(f.last_id == last for f in followers), timeout=30)
            figures["caught_up_after_ready_s"] = time.monotonic() - ready
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for follower in followers:
            for response in follower.responses:
                response.close()
        await asyncio.to_thread(second.stop)
        await asyncio.to_thread(first.stop)

    figures["events_published"] = len(published)
    figures["events_delivered"] = sum(len(f.ids) for f in followers)
    figures["replayed_on_resume"] = sum(len(f.responses[-1].events) for f in followers)
    figures["streams_opened_while_stopping"] = sum(len(f.responses) - 2 for f in followers)
    figures["failed_connection_attempts"] = sum(f.failed_attempts for f in followers)
    figures["not_200"] = sorted(
        {
            f"{response.status} {response.body.decode(errors='replace')}"
            for follower in followers
            for response in follower.responses
            if response.status != 200
        }
    )
    record(ARTIFACT, "restart", figures)
    _check_restart(first, second, followers, published, exited)
    return figures


def _check_restart(
    first: Server,
    second: Server,
    followers: list[Follower],
    published: list[str],
    exited: float,
) -> None:
    assert_clean_exit(first)
    assert_clean_exit(second)
    position = {event_id: index for index, event_id in enumerate(published)}
    for number, follower in enumerate(followers):
        where = f"client {number}"
        statuses = [response.status for response in follower.responses]
        assert set(statuses) == {200}, (where, statuses)
        before, *stopping, after = follower.responses
        # the first stream: the shutdown event, then a clean end of the chunked body
        assert before.ended, (where, "no end of body", before.events[-3:])
        assert before.events[-1].event == "shutdown", (where, before.events[-3:])
        assert before.events[-1].retry == RETRY_MS
        # a reconnect that reached the server while it stopped: ended at once, the same way
        for response in stopping:
            assert response.ended, (where, response.events)
            assert [event.event for event in response.events] == ["shutdown"], where
        # then one stream on the new server, resumed exactly where the client was, no gap
        assert follower.attempted_at[-1] > exited > follower.attempted_at[-2], where
        last_seen = before.events[-2].id
        assert follower.sent_ids == [None] + [last_seen] * (len(stopping) + 1), where
        assert after.headers.get("sse-resumed-from") == last_seen, (where, after.headers)
        assert "sse-gap" not in after.headers, (where, after.headers)
        others = [event.event for event in follower.others]
        assert others == ["shutdown"] * (1 + len(stopping)), (where, follower.others)
        assert follower.last_id == published[-1], (where, "did not get the last event")
        # exactly the published ids from its first one on: in order, no duplicate, no loss
        ids = follower.ids
        assert ids, where
        assert ids[0] == published[0], (where, "subscribed before the first publish")
        assert ids[0] in position, (where, ids[0])
        start = position[ids[0]]
        assert ids == published[start:], (where, _diff(ids, published[start:]))


def _diff(got: list[str], expected: list[str]) -> str:
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    duplicates = len(got) - len(set(got))
    return f"missing {missing[:5]}, unexpected {extra[:5]}, {duplicates} duplicates"


@pytest.mark.timeout(300)
def test_restart_loses_nothing(redis_server: RedisProcess, tmp_path: Path) -> None:
    clients = scaled(1000)
    raise_fd_limit()
    figures = asyncio.run(
        _restart_under_load(
            redis_server.url, unique_prefix(), free_port(), tmp_path / "server.log", clients
        )
    )
    assert figures["shutdown_s"] < GRACE, "some stream had to be aborted after the grace period"


# -- 2. Redis stops for a few seconds ------------------------------------------------------------


OUTAGE = 3.0
PING = 0.5


class Subscriber(EventLog):
    """One stream on ``/events`` that must never end: ids and pings as they arrive."""

    def __init__(self, server: Server) -> None:
        super().__init__()
        self.server = server
        self.stream = EventStream(
            server.host, server.port, f"/events?topic={TOPIC}", on_event=self.on_event
        )
        self.error: BaseException | None = None

    async def run(self) -> None:
        try:
            while await self.stream.read():
                pass
        except OSError as exc:
            self.error = exc


class Attempt:
    """One publish or subscribe request: when it ran and what it got."""

    def __init__(self, began: float) -> None:
        self.began = began
        self.took = 0.0
        self.status = 0
        self.body: Any = None
        self.error: str | None = None

    def ok(self) -> bool:
        return self.status in (200, 201)


async def _request(client: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> Attempt:
    attempt = Attempt(time.monotonic())
    try:
        response = await client.request(method, url, timeout=10, **kwargs)
    except httpx.HTTPError as exc:  # a hang (timeout) or a dropped connection: both wrong
        attempt.error = repr(exc)
    else:
        attempt.status = response.status_code
        try:
            attempt.body = response.json()
        except ValueError:
            attempt.body = response.text
        if method == "POST" and response.status_code == 201:
            attempt.body = attempt.body["id"]
    attempt.took = time.monotonic() - attempt.began
    return attempt


async def _redis_outage(redis: RedisProcess, servers: list[Server], count: int) -> dict[str, Any]:
    subscribers = [Subscriber(servers[index % len(servers)]) for index in range(count)]
    for index, subscriber in enumerate(subscribers):
        await subscriber.stream.open()
        assert subscriber.stream.status == 200, subscriber.stream.body
        if index % 50 == 49:
            await asyncio.sleep(0.01)
    readers = [asyncio.create_task(subscriber.run()) for subscriber in subscribers]
    publishes: list[tuple[int, Attempt]] = []
    subscribes: list[tuple[str, Attempt]] = []
    stopped_at = started_at = back_at = 0.0
    restarted = threading.Event()
    figures: dict[str, Any] = {"subscribers": count, "servers": len(servers)}

    async with httpx.AsyncClient() as client:

        async def publish_steadily() -> None:
            for number in itertools.count():
                server = servers[number % len(servers)]
                attempt = await _request(
                    client, "POST", f"{server.url}/publish/{TOPIC}", content=str(number)
                )
                publishes.append((number, attempt))
                after_restart = [a for _, a in publishes if a.ok() and a.began > started_at > 0]
                if restarted.is_set() and len(after_restart) >= 20:
                    return
                await asyncio.sleep(0.05)

        try:
            publishing = asyncio.create_task(publish_steadily())
            await asyncio.sleep(1.0)
            await asyncio.to_thread(redis.stop)
            stopped_at = time.monotonic()
            # during the outage: new subscriptions to the topic, and to a topic nobody reads
            for topic in (TOPIC, "fresh"):
                for server in servers:
                    attempt = await _request(client, "GET", f"{server.url}/events?topic={topic}")
                    subscribes.append((topic, attempt))
            await asyncio.sleep(max(0.0, OUTAGE - (time.monotonic() - stopped_at)))
            started_at = time.monotonic()
            await asyncio.to_thread(redis.start)
            back_at = time.monotonic()  # Redis answers PING
            figures["outage_s"] = back_at - stopped_at
            restarted.set()
            await asyncio.wait_for(publishing, 60)

            successful = [attempt.body for _, attempt in publishes if attempt.ok()]
            last = successful[-1]
            caught_up = time.monotonic()
            # on a timeout, the checks below tell what is missing
            with contextlib.suppress(AssertionError):
                await wait_until(lambda: all(s.ids[-1:] == [last] for s in subscribers), 30)
            figures["caught_up_s"] = time.monotonic() - caught_up

            # a client that was away since the first event resumes it all, from the history
            # that survived the restart (persistence), on either server
            late = EventStream(
                servers[-1].host, servers[-1].port, f"/events?topic={TOPIC}",
                last_event_id=successful[0],
            )  # fmt: skip
            await late.open()

            async def replay() -> None:
                while len(late.events) < len(successful) - 1 and await late.read():
                    pass

            with contextlib.suppress(asyncio.TimeoutError):  # the checks tell what is missing
                await asyncio.wait_for(replay(), 15)
            late.close()
        finally:
            for reader in readers:
                reader.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
            for subscriber in subscribers:
                subscriber.stream.close()

    outage = (stopped_at, started_at, back_at)
    _check_outage(subscribers, publishes, subscribes, outage, late, successful)
    first_ok = min(a.began for _, a in publishes if a.ok() and a.began > started_at)
    figures.update(
        publishes=len(publishes),
        published=len(successful),
        refused_503=sum(1 for _, a in publishes if a.status == 503),
        slowest_503_s=max((a.took for _, a in publishes if a.status == 503), default=0.0),
        first_success_after_redis_start_s=first_ok - started_at,
        subscribe_503_s=max(a.took for _, a in subscribes),
        pings_during_outage_min=min(
            sum(1 for t in s.stream.pings if stopped_at < t < started_at) for s in subscribers
        ),
        events_delivered=sum(len(s.ids) for s in subscribers),
    )
    return figures


def _check_outage(
    subscribers: list[Subscriber],
    publishes: list[tuple[int, Attempt]],
    subscribes: list[tuple[str, Attempt]],
    outage: tuple[float, float, float],
    late: EventStream,
    successful: list[str],
) -> None:
    stopped_at, started_at, back_at = outage
    # publishing fails loudly and at once: 201 or 503, never a hang, an error or a 500
    for number, attempt in publishes:
        assert attempt.error is None, (number, attempt.error)
        assert attempt.status in (201, 503), (number, attempt.status, attempt.body)
        if attempt.status == 503:
            unknown = isinstance(attempt.body, dict) and str(attempt.body.get("detail")).startswith(
                "Redis did not answer"
            )
            if unknown and attempt.began < stopped_at + 1.0:
                # In flight as Redis went down, or the first write on a pooled connection whose
                # peer had just gone (the write succeeds, the read fails): the client cannot
                # tell whether Redis read the command, so "may have been published" is the
                # truthful answer. Once the connections are known dead, only "not published".
                continue
            assert attempt.body == {
                "status_code": 503,
                "detail": "Redis is unavailable: not published",
            }, (attempt.body, attempt.began - stopped_at)
            assert attempt.took < 5, attempt.took
    during = [a for _, a in publishes if a.began > stopped_at and a.began + a.took < started_at]
    assert len(during) >= 10, "the outage saw too few publishes to tell"
    assert all(a.status == 503 for a in during), [a.status for a in during]
    # once Redis answers again, nothing is refused: no connection left over from before it
    # stopped is handed out (redis-py would fail the first command sent on each)
    after = [a for _, a in publishes if a.began > back_at]
    assert after
    assert all(a.ok() for a in after), [a.status for a in after]
    assert len(successful) >= 30
    # so do new subscriptions, whether the topic is read by the process or not
    for topic, attempt in subscribes:
        assert attempt.error is None, (topic, attempt.error)
        assert attempt.status == 503, (topic, attempt.status, attempt.body)
        assert attempt.body == {"status_code": 503, "detail": "Redis is unavailable"}, attempt.body
        assert attempt.took < 5, (topic, attempt.took)
    # What the subscribers must have received: every successful publish, once, in order. A
    # publish in flight when Redis stopped may also have been stored although its client got
    # the 503 (Redis ran the command, the reply was lost): its outcome is unknown, so its
    # event may be there too, but only at that moment, between the last success before the
    # stop and the first after it, and no more of them than such 503s.
    stored = _expected_ids(subscribers[0].ids, successful, publishes, stopped_at, back_at)
    # open streams stayed open, pinged through the outage, and all got that same sequence
    for number, subscriber in enumerate(subscribers):
        where = f"subscriber {number} on {subscriber.server.url}"
        assert subscriber.error is None, (where, subscriber.error)
        assert not subscriber.stream.ended, where
        assert not subscriber.stream.closed, where
        assert subscriber.others == [], (where, subscriber.others)
        pings = [t for t in subscriber.stream.pings if stopped_at < t < started_at]
        assert pings, (where, "no ping during the outage")
        assert subscriber.ids == stored, (where, _diff(subscriber.ids, stored))
    assert late.status == 200, (late.status, late.body)
    assert "sse-gap" not in late.headers, late.headers
    assert [event.id for event in late.events] == stored[stored.index(successful[0]) + 1 :]


def _expected_ids(
    received: list[str],
    successful: list[str],
    publishes: list[tuple[int, Attempt]],
    stopped_at: float,
    back_at: float,
) -> list[str]:
    """``successful``, plus the events of publishes whose outcome is unknown (see above)."""
    known = set(successful)
    assert [i for i in received if i in known] == successful, _diff(received, successful)
    unknown = [i for i in received if i not in known]
    if not unknown:
        return successful
    in_flight = [a for _, a in publishes if a.status == 503 and a.began <= stopped_at]
    assert len(unknown) <= len(in_flight), (unknown, len(in_flight))
    before = [a.body for _, a in publishes if a.ok() and a.began <= stopped_at]
    after = [a.body for _, a in publishes if a.ok() and a.began > back_at]
    window = received[received.index(before[-1]) + 1 : received.index(after[0])]
    assert set(unknown) <= set(window), (unknown, window)
    return received


@pytest.mark.timeout(180)
def test_redis_outage_end_to_end(
    redis_process: Callable[..., RedisProcess], tmp_path: Path
) -> None:
    redis = redis_process(persistent=True)
    env = {"FAULT_REDIS_URL": redis.url, "FAULT_PREFIX": unique_prefix(), "FAULT_PING": str(PING)}
    servers = [
        Server("127.0.0.1", free_port(), tmp_path / f"server-{name}.log", env) for name in "ab"
    ]
    try:
        for server in servers:
            server.start()
        figures = asyncio.run(_redis_outage(redis, servers, scaled(200, minimum=20)))
    finally:
        for server in servers:
            server.stop()
    for server in servers:
        assert_clean_exit(server)
    record(ARTIFACT, "redis_outage", figures)


# -- 3. a network cut without FIN ----------------------------------------------------------------


CUT_PING = 1.0
CUT_SEND_TIMEOUT = 2.0
USER_TIMEOUT = 3.0
WATCH = 15.0
"""Seconds the idle stream of the server without a user timeout is watched after the cut."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


class Link:
    """A network namespace for the client, joined to the root namespace by a veth pair."""

    def __init__(self) -> None:
        tag = f"{os.getpid() % 100000}{next(_links)}"
        self.namespace = f"sse-fault-{tag}"
        self.host_dev, self.client_dev = f"sfh{tag}", f"sfc{tag}"
        self.host_address = self.client_address = ""

    def create(self) -> None:
        if shutil.which("ip") is None or shutil.which("ss") is None:
            pytest.fail(
                "the network-cut test needs iproute2 (`ip`, `ss`): apt-get install iproute2"
            )
        taken = _ip("-o", "addr").stdout
        subnet = next(n for n in range(20, 250) if f"10.200.{n}." not in taken)
        created = _ip("netns", "add", self.namespace, check=False)
        if created.returncode != 0:
            pytest.fail(
                "the network-cut test needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) to create a "
                f"network namespace: `ip netns add` said {created.stderr.strip()!r}"
            )
        self.host_address = f"10.200.{subnet}.1"
        self.client_address = f"10.200.{subnet}.2"
        inside = ("netns", "exec", self.namespace, "ip")
        _ip("link", "add", self.host_dev, "type", "veth", "peer", "name", self.client_dev)
        _ip("link", "set", self.client_dev, "netns", self.namespace)
        _ip("addr", "add", f"{self.host_address}/30", "dev", self.host_dev)
        _ip("link", "set", self.host_dev, "up")
        _ip(*inside, "addr", "add", f"{self.client_address}/30", "dev", self.client_dev)
        _ip(*inside, "link", "set", self.client_dev, "up")
        _ip(*inside, "link", "set", "lo", "up")

    def cut(self) -> None:
        """Take the client's end down: nothing reaches the server any more, not even a RST."""
        _ip("netns", "exec", self.namespace, "ip", "link", "set", self.client_dev, "down")

    def remove(self) -> None:
        if not self.host_address:
            return  # never created
        _ip("netns", "del", self.namespace, check=False)  # takes the client's end with it
        _ip("link", "del", self.host_dev, check=False)

    def server_sockets(self, port: int) -> list[str]:
        """The server's TCP sockets on ``port`` to the client (``ss`` lines, with timers)."""
        out = subprocess.run(
            ["ss", "-tno", "state", "all", f"( sport = :{port} )", "dst", self.client_address],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        return [line for line in out.splitlines()[1:] if line.strip()]


_links = itertools.count()


@contextlib.contextmanager
def client_namespace() -> Iterator[Link]:
    """A :class:`Link`, removed on the way out whatever happened (in the test's body, so that
    a machine that cannot create it fails the test rather than erroring in a fixture)."""
    link = Link()
    try:
        link.create()
        yield link
    finally:
        link.remove()


def _retransmission_give_up_s() -> float:
    """When Linux gives up on unacknowledged data: after ``tcp_retries2`` retransmissions,
    the timeout doubling from 200 ms up to 120 s (the kernel's ``retransmits_timed_out``)."""
    retries = int(Path("/proc/sys/net/ipv4/tcp_retries2").read_text())
    rto_min, rto_max, doublings = 0.2, 120.0, 9  # ilog2(rto_max / rto_min)
    if retries <= doublings:
        return ((2 << retries) - 1) * rto_min
    return ((2 << doublings) - 1) * rto_min + (retries - doublings) * rto_max


@dataclasses.dataclass
class Cut:
    """What the servers saw after the cut."""

    at: float
    """``time.time()`` of the cut (the servers record wall-clock times too)."""
    ended: dict[str, dict[str, Any]]
    """The named streams that ended within :data:`WATCH`, as the app recorded them."""
    sent_at_cut: dict[str, int]
    left_plain: list[str]
    left_timed: list[str]
    """The servers' sockets to the client at the end of the watch (``ss`` lines)."""
    outputs: list[str]


@pytest.mark.timeout(120)
def test_network_cut_without_fin(tmp_path: Path) -> None:
    with client_namespace() as link:
        cut = _cut(link, tmp_path)
    figures: dict[str, Any] = {
        "ping_interval_s": CUT_PING,
        "send_timeout_s": CUT_SEND_TIMEOUT,
        "user_timeout_s": USER_TIMEOUT,
        "watched_s": WATCH,
        "tcp_retries2_give_up_s": _retransmission_give_up_s(),
    }
    for name, state in sorted(cut.ended.items()):
        figures[f"{name}_detected_s"] = state["ended"] - cut.at
        figures[f"{name}_reason"] = state["reason"]
        if state["last_yield"] is not None:
            # from the cut until the send that never completed began: the buffers filling
            figures[f"{name}_buffers_filled_s"] = state["last_yield"] - cut.at
            figures[f"{name}_bytes_queued_after_cut"] = state["sent"] - cut.sent_at_cut[name]
    figures["server_sockets_left_without_user_timeout"] = len(cut.left_plain)
    figures["server_sockets_left_with_user_timeout"] = len(cut.left_timed)
    record(ARTIFACT, "network_cut", figures)
    print("\n".join(["sockets left (no user timeout):", *cut.left_plain]))

    ended = cut.ended
    for name in ("plain-feed", "timed-feed", "timed-idle"):
        assert name in ended, (name, "not detected within", WATCH, "s", ended)
    # (a) data keeps flowing into the buffers, none of it acknowledged: send_timeout cuts it,
    # not before send_timeout after the cut, whether or not a send had to wait yet
    feed = ended["plain-feed"]
    assert feed["reason"] == "send_timeout", feed
    assert CUT_SEND_TIMEOUT - 0.2 < feed["ended"] - cut.at < 2 * CUT_SEND_TIMEOUT + 3, feed
    # (b) pings only: every send completes, but the pings wait unacknowledged in the kernel's
    # buffer: send_timeout cuts it the same way (before this rule, it stayed open)
    idle_plain = ended.get("plain-idle")
    assert idle_plain is not None, ("pings only: not cut", ended)
    assert idle_plain["reason"] == "send_timeout", idle_plain
    detected = idle_plain["ended"] - cut.at
    assert CUT_SEND_TIMEOUT - 0.2 < detected < CUT_PING + 2 * CUT_SEND_TIMEOUT + 3, idle_plain
    # ... and both connections were reset: no socket left retransmitting to a dead peer
    assert cut.left_plain == [], cut.left_plain
    # TCP_USER_TIMEOUT, inherited from the listening socket, makes the kernel give up too
    idle = ended["timed-idle"]
    assert idle["reason"] == "disconnect", idle
    assert USER_TIMEOUT - 0.2 < idle["ended"] - cut.at < CUT_PING + USER_TIMEOUT + 3, idle
    assert cut.left_timed == [], cut.left_timed
    for output in cut.outputs:
        assert "Traceback" not in output, output[-3000:]


def _cut(link: Link, tmp_path: Path) -> Cut:
    """Open the streams from the namespace, cut its link, watch what the servers notice."""
    env = {
        "FAULT_PING": str(CUT_PING),
        "FAULT_SEND_TIMEOUT": str(CUT_SEND_TIMEOUT),
        "FAULT_GRACE": "1",
    }
    # When they stop, the dead connections cannot drain: uvicorn waits its graceful timeout.
    plain = Server(link.host_address, free_port(), tmp_path / "plain.log", env, graceful_timeout=2)
    sock = listening_socket(link.host_address, 0, user_timeout=USER_TIMEOUT)
    # The timed server's send_timeout is well past USER_TIMEOUT: what ends its streams is the
    # kernel giving up (a "disconnect"), not the unacknowledged-bytes rule racing it.
    timed_env = {**env, "FAULT_SEND_TIMEOUT": str(10 * USER_TIMEOUT)}
    timed = Server(
        link.host_address, sock.getsockname()[1], tmp_path / "timed.log", timed_env,
        sock=sock, graceful_timeout=2,
    )  # fmt: skip
    streams = {
        "plain-feed": f"{plain.url}/feed?name=plain-feed",
        "plain-idle": f"{plain.url}/idle?name=plain-idle",
        "timed-feed": f"{timed.url}/feed?name=timed-feed",
        "timed-idle": f"{timed.url}/idle?name=timed-idle",
    }
    client: subprocess.Popen[str] | None = None
    try:
        try:
            plain.start()
            timed.start()
        finally:
            sock.close()  # uvicorn has its own copy
        client = subprocess.Popen(
            ["ip", "netns", "exec", link.namespace, sys.executable, "-m",
             "tests.soak.fault_client", *streams.values()],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        assert client.stdout is not None
        opened = [json.loads(client.stdout.readline()) for _ in streams]
        assert sorted(line["open"] for line in opened) == sorted(streams.values()), opened
        assert {line["status"] for line in opened} == {200}
        time.sleep(1.5)  # data flows, pings go out and are acknowledged

        sent_at_cut = {
            name: state["sent"]
            for server in (plain, timed)
            for name, state in server.stats()["streams"].items()
        }
        cut_at = time.time()
        link.cut()
        ended: dict[str, dict[str, Any]] = {}
        while time.time() - cut_at < WATCH:
            for server in (plain, timed):
                for name, state in server.stats()["streams"].items():
                    if state["ended"] is not None:
                        ended.setdefault(name, state)
            time.sleep(0.1)
        left_plain = link.server_sockets(plain.port)
        left_timed = link.server_sockets(timed.port)
    finally:
        if client is not None:
            client.kill()
            client.wait(timeout=5)
        plain.stop()
        timed.stop()
    return Cut(cut_at, ended, sent_at_cut, left_plain, left_timed, [plain.output(), timed.output()])
