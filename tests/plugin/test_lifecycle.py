"""Open streams: connection limit, HEAD, maximum lifetime, shutdown, compression."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from itertools import islice
from typing import Any

import anyio
import pytest
from litestar import Litestar, get, route
from litestar.config.compression import CompressionConfig
from litestar.testing import TestClient

from litestar_sse import ServerSentEvent, ServerSentEventMessage, SSEConfig, SSEPlugin, event_stream
from litestar_sse._plugin.config import STATE_KEY, AppSSE
from litestar_sse.asgi import ASGIStreamingResponse
from litestar_sse.testing import sse_stream
from tests.backends import on_each_backend
from tests.polling import wait_until_sync

anyio_backend = on_each_backend(__name__)  # asyncio and trio

started: list[str] = []
closed: list[str] = []


@route("/events", http_method=["GET", "HEAD"])
@event_stream
async def events() -> AsyncIterator[int]:
    """An endless stream: one event, then one every 10 ms."""
    started.append("events")
    try:
        i = 0
        while True:
            yield i
            i += 1
            await anyio.sleep(0.01)
    finally:
        closed.append("events")


@get("/quiet")
@event_stream
async def quiet() -> AsyncIterator[str]:
    yield "hello"
    await anyio.sleep(3600)


@get("/flood")
@event_stream
async def flood() -> AsyncIterator[str]:
    chunk = "x" * 1000
    while True:
        yield chunk


@get("/response", sync_to_thread=False)
def response() -> ServerSentEvent:
    return ServerSentEvent(quiet_items())


async def quiet_items() -> AsyncIterator[str]:
    yield "from a response"
    await anyio.sleep(3600)


def make_app(**config: Any) -> Litestar:
    config.setdefault("ping_interval", None)
    return Litestar(
        [events, quiet, flood, response],
        plugins=[SSEPlugin(SSEConfig(**config))],
        **config.pop("app_kwargs", {}),
    )


def registry_of(app: Litestar) -> Any:
    app_sse = app.state[STATE_KEY]
    assert isinstance(app_sse, AppSSE)
    return app_sse.registry


@pytest.fixture(autouse=True)
def _clear() -> None:
    started.clear()
    closed.clear()


# -- connection limit ----------------------------------------------------------------------


def test_streams_beyond_max_connections_get_503_with_retry_after() -> None:
    app = make_app(max_connections=2, retry_after=7)
    with TestClient(app) as client:
        with sse_stream(client, "GET", "/quiet") as a, sse_stream(client, "GET", "/response") as b:
            assert (a.status_code, b.status_code) == (200, 200)
            assert len(registry_of(app)) == 2
            with sse_stream(client, "GET", "/quiet") as refused:
                assert refused.status_code == 503
                assert refused.headers["retry-after"] == "7"
                assert refused.headers["content-type"].startswith("text/plain")
                assert refused.read() == b"Too many open event streams, retry later."
            # other routes are not limited
            assert client.get("/schema/openapi.json").status_code == 200
        # closed streams free their slots
        deadline = time.monotonic() + 2
        while len(registry_of(app)) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(registry_of(app)) == 0
        with sse_stream(client, "GET", "/quiet") as again:
            assert again.status_code == 200


def test_max_connections_per_client_counts_each_client_key_apart() -> None:
    """One client may not hold the app's whole pool; others still get in."""

    def key(request: Any) -> Any:
        return request.headers.get("x-client")

    app = make_app(max_connections_per_client=2, client_key=key)
    registry = registry_of(app)
    with TestClient(app) as client:
        alice = {"x-client": "alice"}
        with (
            sse_stream(client, "GET", "/quiet", headers=alice) as a1,
            sse_stream(client, "GET", "/response", headers=alice) as a2,
        ):
            assert (a1.status_code, a2.status_code) == (200, 200)
            with sse_stream(client, "GET", "/quiet", headers=alice) as refused:
                assert refused.status_code == 503
                assert refused.headers["retry-after"] == "5"
            with sse_stream(client, "GET", "/quiet", headers={"x-client": "bob"}) as bob:
                assert bob.status_code == 200
            # a request the key cannot place (None) is not counted per client
            with sse_stream(client, "GET", "/quiet") as anonymous:
                assert anonymous.status_code == 200
        wait_until_sync(lambda: len(registry) == 0)
        assert registry._per_client == {}  # keys leave with their last stream
        with sse_stream(client, "GET", "/quiet", headers=alice) as again:
            assert again.status_code == 200


def test_the_default_client_key_is_the_client_address() -> None:
    app = make_app(max_connections_per_client=1)
    with TestClient(app) as client, sse_stream(client, "GET", "/quiet") as first:
        assert first.status_code == 200
        with sse_stream(client, "GET", "/quiet") as second:
            assert second.status_code == 503  # the same address ("testclient")


# -- HEAD ------------------------------------------------------------------------------------


def test_head_gets_the_headers_and_no_body_and_never_runs_the_producer() -> None:
    with TestClient(make_app()) as client:
        response = client.head("/events")
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert response.content == b""
    assert started == []


# -- maximum lifetime ------------------------------------------------------------------------


def test_stream_older_than_max_lifetime_ends_cleanly() -> None:
    lifetime_event = ServerSentEventMessage(event="lifetime", data="reconnect", retry=0)
    app = make_app(max_lifetime=0.2, lifetime_event=lifetime_event)
    with TestClient(app) as client, sse_stream(client, "GET", "/events") as stream:
        begun = time.monotonic()
        events = list(stream)
        took = time.monotonic() - begun
        assert stream.ended
    assert 0.15 < took < 1.5
    assert events[-1].event == "lifetime"
    assert events[-1].data == "reconnect"
    assert [e.data for e in events[:-1]] == [str(i) for i in range(len(events) - 1)]
    assert stream.body.endswith(b"event: lifetime\r\nretry: 0\r\ndata: reconnect\r\n\r\n")
    assert closed == ["events"]


@pytest.mark.parametrize("send_timeout", [None, 30.0])
def test_a_quiet_stream_without_pings_ends_at_its_lifetime_too(
    send_timeout: float | None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The lifetime is checked by the timer wheel with the pings: a stream with neither pings
    # nor a send timeout (nothing else for the wheel to check) still ends on time, and no
    # stream gets a loop timer of its own (a TimerHandle and, on uvloop, a libuv timer each).
    own_timers = 0
    call_later = asyncio.BaseEventLoop.call_later

    def counting(loop: Any, delay: float, callback: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal own_timers
        if isinstance(getattr(callback, "__self__", None), ASGIStreamingResponse):
            own_timers += 1
        return call_later(loop, delay, callback, *args, **kwargs)

    monkeypatch.setattr(asyncio.BaseEventLoop, "call_later", counting)
    app = make_app(max_lifetime=0.2, send_timeout=send_timeout, lifetime_event=None)
    with TestClient(app) as client, sse_stream(client, "GET", "/quiet", timeout=3) as stream:
        begun = time.monotonic()
        events = list(stream)
        took = time.monotonic() - begun
        assert stream.ended
    assert [event.data for event in events] == ["hello"]
    assert 0.15 < took < 1.5
    assert own_timers == 0
    assert "timer check" not in caplog.text


def test_no_lifetime_timer_without_max_lifetime() -> None:
    with (
        TestClient(make_app()) as client,
        sse_stream(client, "GET", "/events", timeout=1) as stream,
    ):
        assert len(list(islice(stream, 30))) == 30
        assert not stream.ended


# -- shutdown --------------------------------------------------------------------------------


SHUTDOWN_EVENT = ServerSentEventMessage(event="shutdown", data="bye", retry=5000)


def test_shutdown_ends_every_stream_with_the_final_event() -> None:
    app = make_app(shutdown_event=SHUTDOWN_EVENT)
    registry = registry_of(app)
    with (
        TestClient(app) as client,
        sse_stream(client, "GET", "/events") as endless,
        sse_stream(client, "GET", "/quiet") as quiet_stream,
        sse_stream(client, "GET", "/response") as from_response,
    ):
        next(iter(endless)), next(iter(quiet_stream)), next(iter(from_response))
        client.blocking_portal.call(registry.begin_shutdown, 1.0)
        for stream in (endless, quiet_stream, from_response):
            rest = list(stream)
            assert stream.ended
            assert rest[-1].event == "shutdown"
            assert rest[-1].data == "bye"
            assert stream.body.endswith(b"event: shutdown\r\nretry: 5000\r\ndata: bye\r\n\r\n")
            # every event before the final one is whole
            assert all(e.event == "message" for e in rest[:-1])
        # a stream that starts while shutting down is ended at once, the same way, without
        # running its producer
        with sse_stream(client, "GET", "/events") as late:
            assert [e.event for e in late] == ["shutdown"]
    assert closed.count("events") == 1
    assert len(registry) == 0


def test_leaving_the_lifespan_ends_open_streams() -> None:
    """The lifespan shutdown is the backstop when no signal handler ran (test clients, ...)."""
    app = make_app(shutdown_event=SHUTDOWN_EVENT)
    client = TestClient(app)
    client.__enter__()
    with sse_stream(client, "GET", "/events") as stream:
        assert next(iter(stream)).data == "0"
        begun = time.monotonic()
        # the lifespan shutdown waits for open streams: it returns once this one has ended
        client.__exit__(None, None, None)
        assert time.monotonic() - begun < 1.5  # far less than the 5 s grace period
        assert closed == ["events"]
        assert len(registry_of(app)) == 0


def test_shutdown_without_final_event_just_ends_the_body() -> None:
    app = make_app()
    with TestClient(app) as client, sse_stream(client, "GET", "/quiet") as stream:
        assert next(iter(stream)).data == "hello"
        client.blocking_portal.call(registry_of(app).begin_shutdown, 1.0)
        assert list(stream) == []
        assert stream.ended
        assert bytes(stream.body) == b"data: hello\r\n\r\n"


def test_stuck_stream_is_aborted_after_the_grace_period() -> None:
    app = make_app(shutdown_event=SHUTDOWN_EVENT)
    registry = registry_of(app)
    with TestClient(app) as client, sse_stream(client, "GET", "/flood") as stream:
        # stop reading: the app's sends block once the test's buffer is full
        time.sleep(0.1)
        begun = time.monotonic()
        client.blocking_portal.call(registry.begin_shutdown, 0.3)
        assert client.blocking_portal.call(registry.wait_closed, 5.0)
        assert 0.25 < time.monotonic() - begun < 2
        assert len(registry) == 0
        assert not stream.ended  # aborted: no end of body was sent


def test_app_can_start_again_after_a_shutdown() -> None:
    app = make_app()
    for _ in range(2):
        with TestClient(app) as client, sse_stream(client, "GET", "/events") as stream:
            assert [e.data for e in islice(stream, 2)] == ["0", "1"]
            assert not stream.ended


def test_plugin_counts_open_streams() -> None:
    plugin = SSEPlugin(SSEConfig(ping_interval=None))
    app = Litestar([quiet], plugins=[plugin])
    with TestClient(app) as client:
        assert plugin.open_streams == 0
        with sse_stream(client, "GET", "/quiet"):
            assert plugin.open_streams == 1
        deadline = time.monotonic() + 2
        while plugin.open_streams and time.monotonic() < deadline:
            time.sleep(0.01)
        assert plugin.open_streams == 0


# -- compression -----------------------------------------------------------------------------


@get("/slow")
@event_stream
async def slow() -> AsyncIterator[str]:
    await anyio.sleep(0.3)
    for _ in range(3):
        yield "x" * 50
        await anyio.sleep(0.2)


def test_compressed_stream_opens_at_once_and_each_event_arrives_promptly() -> None:
    app = Litestar(
        [slow],
        plugins=[SSEPlugin(SSEConfig(ping_interval=None))],
        compression_config=CompressionConfig(backend="gzip", minimum_size=1),
    )
    with TestClient(app) as client:
        begun = time.monotonic()
        with sse_stream(client, "GET", "/slow", headers={"accept-encoding": "gzip"}) as stream:
            opened = time.monotonic() - begun
            assert stream.headers["content-encoding"] == "gzip"
            arrivals = []
            for event in stream:
                assert event.data == "x" * 50
                arrivals.append(time.monotonic() - begun)
    # headers before the first event (the middleware would hold them until the first chunk)
    assert opened < 0.2
    # each event as it is produced (0.3, 0.5, 0.7 s), not all at the end
    assert len(arrivals) == 3
    assert arrivals[0] < 0.55
    assert arrivals[1] - arrivals[0] > 0.1
    assert arrivals[2] - arrivals[1] > 0.1


def test_open_streams_counts_the_streams_of_every_app_the_plugin_serves() -> None:
    @get("/events")
    async def endless_events() -> ServerSentEvent:
        async def endless() -> AsyncIterator[int]:
            yield 1
            await anyio.sleep_forever()

        return ServerSentEvent(endless())

    plugin = SSEPlugin(SSEConfig(ping_interval=None))
    first = Litestar([endless_events], plugins=[plugin])
    second = Litestar([endless_events], plugins=[plugin])
    with TestClient(first) as one, TestClient(second) as two:
        with sse_stream(one, "GET", "/events") as a, sse_stream(two, "GET", "/events") as b:
            next(iter(a))
            next(iter(b))
            assert plugin.open_streams == 2
        assert wait_until_sync(lambda: plugin.open_streams == 0)


@get("/hung")
@event_stream(cleanup_timeout=60)
async def hung() -> AsyncIterator[str]:
    try:
        yield "hello"
        await anyio.sleep(3600)
    finally:
        await anyio.sleep_forever()  # a cleanup that never returns


def test_a_hung_cleanup_is_cut_when_the_grace_period_is_over(anyio_backend: str) -> None:
    """The lifespan's shutdown waits for no cleanup past the grace period, whatever the
    stream's cleanup_timeout (here 60 s). On trio, a ``finally`` that runs as the stream's
    scope is cancelled cannot await (trio's rule: it would need a shielded scope), so the
    cleanup ends at once, with nothing to cut."""
    on_trio = anyio_backend == "trio"
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("litestar_sse")  # the app's logging config replaces caplog's
    logger.addHandler(handler)
    app = Litestar([hung], plugins=[SSEPlugin(SSEConfig(ping_interval=None))])
    registry = registry_of(app)
    try:
        with TestClient(app) as client, sse_stream(client, "GET", "/hung") as stream:
            assert next(iter(stream)).data == "hello"
            begun = time.monotonic()
            client.blocking_portal.call(registry.begin_shutdown, 0.3)
            assert client.blocking_portal.call(registry.wait_closed, 5.0)
            assert (0 if on_trio else 0.25) < time.monotonic() - begun < 2
            assert len(registry) == 0
    finally:
        logger.removeHandler(handler)
    cut = [r.getMessage() for r in records if "was still cleaning up" in r.getMessage()]
    if on_trio:
        assert cut == []
        return
    assert len(cut) == 1, [r.getMessage() for r in records]
    assert "GET /hung" in cut[0]
    assert "shutdown" in cut[0]
