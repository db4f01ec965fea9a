"""Authorization over time: an expiry ``authorize`` returns, and periodic re-checks.

(Before, ``authorize`` ran only when subscribing: a revoked or expired credential kept its
stream and its events for ever.)
"""

from __future__ import annotations

import asyncio
import datetime
import gc
import json
import time
import weakref
from typing import Any

import pytest
from conftest import ASGIStream, BackendFactory, until
from litestar import Litestar, Request, get, route
from litestar.background_tasks import BackgroundTask
from litestar.params import FromQuery

from litestar_sse import ServerSentEvent, SSEConfig, SSEPlugin
from litestar_sse.asgi._counters import COUNTERS
from litestar_sse.broadcast import Authorization, Broadcaster
from litestar_sse.broadcast._authorization import Watch

pytestmark = pytest.mark.anyio


def make_app(broadcaster: Broadcaster) -> Litestar:
    @get("/events")
    async def events(
        request: Request[Any, Any, Any], topic: FromQuery[list[str]]
    ) -> ServerSentEvent:
        return await broadcaster.subscribe(topic, connection=request)

    return Litestar([events])


def ended_with(stream: ASGIStream) -> tuple[str, dict[str, Any]]:
    last = stream.events[-1]
    return last.event, json.loads(last.data)


async def test_a_stream_ends_cleanly_when_its_authorization_expires(
    make_backend: BackendFactory,
) -> None:
    def authorize(connection: Any, topic: str) -> Authorization:
        return Authorization(expires_at=time.time() + 0.3)

    stops = COUNTERS.stops.get("unauthorized", 0)
    async with Broadcaster(make_backend(), authorize=authorize) as broadcaster:
        async with ASGIStream(make_app(broadcaster), "/events", query="topic=news") as stream:
            assert stream.status == 200
            await broadcaster.publish("news", "while allowed")
            await stream.wait_events(1)
            await stream.wait_for(lambda: stream.task_done, timeout=5)
            assert [e.data for e in stream.events[:-1]] == ["while allowed"]
            assert ended_with(stream) == ("unauthorized", {"reason": "expired"})
            assert stream.messages[-1] == {
                "type": "http.response.body",
                "body": b"",
                "more_body": False,
            }
        assert broadcaster.stats().subscribers == {}
    assert COUNTERS.stops.get("unauthorized", 0) == stops + 1


async def test_a_revoked_credential_ends_the_stream_at_the_next_recheck(
    make_backend: BackendFactory,
) -> None:
    revoked: set[str] = set()

    def authorize(connection: Any, topic: str) -> bool:
        return connection.headers.get("x-user") not in revoked

    async with Broadcaster(
        make_backend(), authorize=authorize, reauthorize_every=0.05
    ) as broadcaster:
        app = make_app(broadcaster)
        async with (
            ASGIStream(app, "/events", query="topic=t", headers={"x-user": "ann"}) as ann,
            ASGIStream(app, "/events", query="topic=t", headers={"x-user": "bob"}) as bob,
        ):
            await broadcaster.publish("t", "one")
            await ann.wait_events(1)
            await bob.wait_events(1)
            revoked.add("ann")
            await ann.wait_for(lambda: ann.task_done, timeout=5)
            assert ended_with(ann) == ("unauthorized", {"reason": "revoked"})
            await broadcaster.publish("t", "two")
            await bob.wait_events(2)  # bob keeps his stream
            assert not bob.task_done


class _Mark:
    pass


def watch_tasks(broadcaster: Broadcaster) -> int:
    """The watches armed (an expiry timer or a re-check task) for ``broadcaster``."""
    return sum(
        1
        for watch in gc.get_objects()
        if type(watch) is Watch
        and watch._authorize is broadcaster.authorize
        and (watch._timer is not None or watch._task is not None)
    )


def watched_app(
    max_connections: int, recheck: bool
) -> tuple[Litestar, Broadcaster, list[weakref.ref[Any]]]:
    """An app whose ``authorize`` allows for an hour, or a minute between re-checks; and a
    weak reference to a mark in the scope of each request it authorized (a ``Request`` has
    no weak references), to tell when a request is freed."""
    requests: list[weakref.ref[Any]] = []

    def authorize(connection: Any, topic: str) -> bool | Authorization:
        connection.scope["test_mark"] = mark = _Mark()
        requests.append(weakref.ref(mark))
        return True if recheck else Authorization(expires_at=time.time() + 3600)

    broadcaster = Broadcaster(authorize=authorize, reauthorize_every=60.0 if recheck else None)

    @route("/events", http_method=["GET", "HEAD"])
    async def events(
        request: Request[Any, Any, Any], topic: FromQuery[str], linger: FromQuery[float] = 0.0
    ) -> ServerSentEvent:
        # linger: a background task keeps the request's task running after the stream ended.
        background = BackgroundTask(asyncio.sleep, linger) if linger else None
        return await broadcaster.subscribe(topic, connection=request, background=background)

    # The defaults (pings, send timeout, lifetime): the timer wheel lets go of a stream that
    # ended, as the watch does.
    config = SSEConfig(max_connections=max_connections, broadcaster=broadcaster)
    plugin = SSEPlugin(config)
    return Litestar([events], plugins=[plugin]), broadcaster, requests


async def request_done(app: Litestar, method: str = "GET") -> int:
    """The status of a request to the app, once it is answered; nothing of it is kept."""
    stream = ASGIStream(app, "/events", query="topic=t", method=method)
    async with stream:
        await stream.wait_for(lambda: stream.task_done)
    return stream.status


@pytest.mark.parametrize("recheck", [False, True], ids=["expiry", "reauthorize_every"])
async def test_a_stream_that_never_starts_never_has_a_watch(recheck: bool) -> None:
    # A watch started with the response slept until its first check (an hour, a minute
    # here), holding the request of a stream refused with a 503, or of a HEAD.
    app, broadcaster, requests = watched_app(1, recheck)
    async with broadcaster, ASGIStream(app, "/events", query="topic=t") as admitted:
        await until(lambda: watch_tasks(broadcaster) == 1)  # once the stream runs
        assert admitted.status == 200
        assert await request_done(app) == 503
        assert await request_done(app, "HEAD") == 503
        assert watch_tasks(broadcaster) == 1
        gc.collect()
        assert [ref() is None for ref in requests] == [False, True, True]
    app, broadcaster, requests = watched_app(10, recheck)
    async with broadcaster:
        assert await request_done(app, "HEAD") == 200  # admitted: nothing runs
        assert watch_tasks(broadcaster) == 0
        gc.collect()
        assert requests[0]() is None


@pytest.mark.parametrize("recheck", [False, True], ids=["expiry", "reauthorize_every"])
async def test_a_watch_ends_with_its_stream(recheck: bool) -> None:
    # It slept until its next check, holding the request of a stream long over.
    app, broadcaster, requests = watched_app(10, recheck)
    async with broadcaster:
        async with ASGIStream(app, "/events", query="topic=t") as stream:
            await until(lambda: watch_tasks(broadcaster) == 1)
            assert stream.status == 200
        await until(lambda: watch_tasks(broadcaster) == 0)
        del stream  # it holds the scope
        gc.collect()
        assert requests[0]() is None


@pytest.mark.parametrize("recheck", [False, True], ids=["expiry", "reauthorize_every"])
async def test_a_watch_ends_with_its_stream_not_with_the_requests_task(recheck: bool) -> None:
    # Ended with the request's task, the watch of a stream whose request went on (a background
    # task, a transport running the app in the caller's task) slept on, holding the request.
    app, broadcaster, _ = watched_app(10, recheck)
    async with broadcaster:
        stream = ASGIStream(app, "/events", query="topic=t&linger=3")
        async with stream:
            await until(lambda: watch_tasks(broadcaster) == 1)
            stream._disconnect.set()  # the client leaves; the background task runs on
            await until(lambda: watch_tasks(broadcaster) == 0)
            assert not stream.task_done


async def test_on_start_runs_once_when_a_subscription_is_first_iterated(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[str] = []

    def on_start() -> None:
        calls.append("start")
        raise RuntimeError("boom")

    async with Broadcaster() as broadcaster:
        subscription = await broadcaster.open_subscription("t")
        subscription.on_start = on_start
        await broadcaster.publish("t", "x")
        assert calls == []  # not when it is built, nor handed over
        assert aiter(subscription) is subscription  # logged, not raised
        assert aiter(subscription) is subscription
        assert calls == ["start"]
        assert (await anext(subscription)).encode().endswith(b"data: x\r\n\r\n")
        subscription.close()
    assert "on_start of a broadcast subscription failed" in caplog.text


async def test_an_authorization_already_expired_is_a_403(make_backend: BackendFactory) -> None:
    def authorize(connection: Any, topic: str) -> Authorization:
        return Authorization(expires_at=datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC))

    async with Broadcaster(make_backend(), authorize=authorize) as broadcaster:
        async with ASGIStream(make_app(broadcaster), "/events", query="topic=t") as stream:
            await stream.wait_for(lambda: stream.task_done)
            assert stream.status == 403
        assert await broadcaster.topic_of(await broadcaster.publish("t", 1)) is None


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="reauthorize_every"):
        Broadcaster(reauthorize_every=0.0, authorize=lambda c, t: True)
    with pytest.raises(ValueError, match="needs an authorize"):
        Broadcaster(reauthorize_every=5.0)
    with pytest.raises(ValueError, match="timezone-aware"):
        Authorization(expires_at=datetime.datetime(2030, 1, 1))
    with pytest.raises(TypeError):
        Authorization(expires_at="tomorrow")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unauthorized_event"):
        Broadcaster(unauthorized_event="bad\nname")
