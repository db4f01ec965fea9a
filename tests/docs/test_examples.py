"""Every code sample of the docs (``docs/examples``) runs, and does what the docs say it does."""

from __future__ import annotations

import asyncio
import gzip
import importlib.util
import json
import re
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from itertools import islice
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from litestar import Litestar, post
from litestar.params import JSONBody
from litestar.testing import TestClient

from litestar_sse import ServerSentEvent
from litestar_sse.codec import DecodedComment, DecodedEvent, EventDecoder, decode_stream
from litestar_sse.testing import sse_stream
from tests.polling import wait_until_sync
from tests.sse_wire import WITHOUT_APP_LOGGING

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


def load(name: str) -> ModuleType:
    """Import ``docs/examples/<name>.py`` afresh, under a name of its own."""
    module_name = f"docs_example_{name}"
    spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pydantic look their module up
    spec.loader.exec_module(module)
    return module


def fetch(app: Litestar, path: str, method: str = "GET", **kwargs: Any) -> httpx.Response:
    with TestClient(app) as client:
        response = client.request(method, path, **kwargs)
    assert response.status_code == 200, response.text
    return response


def events_of(app: Litestar, path: str, method: str = "GET", **kwargs: Any) -> list[DecodedEvent]:
    response = fetch(app, path, method, **kwargs)
    assert response.headers["content-type"].startswith("text/event-stream")
    return decode_stream(response.content)


def data_of(events: list[DecodedEvent]) -> list[str]:
    return [event.data for event in events]


async def stream_then_disconnect(
    app: Litestar, path: str, *, chunks: int, before_disconnect: Callable[[], None] | None = None
) -> list[bytes]:
    """Call the ASGI app like a server would; the client leaves after ``chunks`` body chunks.

    Litestar's test clients buffer the whole response, so they cannot leave half-way.
    """
    received: list[bytes] = []
    enough = asyncio.Event()
    requested = False

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await enough.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body" and message.get("body"):
            received.append(message["body"])
            if len(received) >= chunks:
                if before_disconnect is not None:
                    before_disconnect()
                enough.set()

    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"test")],
        "client": ("127.0.0.1", 50000),
        "server": ("test", 80),
        "state": {},
    }
    await asyncio.wait_for(app(scope, receive, send), timeout=10)  # type: ignore[arg-type]
    return received


# -- getting started --------------------------------------------------------------------------


def fast_sleep_for(module: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the example's ``asyncio.sleep`` instant (its own global only, not asyncio's)."""
    real_sleep = asyncio.sleep

    async def no_wait(_: float) -> None:
        await real_sleep(0)

    fake = ModuleType("asyncio")
    fake.sleep = no_wait  # type: ignore[attr-defined]
    monkeypatch.setattr(module, "asyncio", fake)


def test_first_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    module = load("first_stream")
    fast_sleep_for(module, monkeypatch)
    events = events_of(module.app, "/count?limit=3")
    assert events == [DecodedEvent(data=str(n), event="count") for n in (1, 2, 3)]


def test_first_generator_sends_what_the_first_stream_sends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = load("first_generator")
    fast_sleep_for(module, monkeypatch)
    response = fetch(module.app, "/count?limit=3")
    assert decode_stream(response.content) == [
        DecodedEvent(data=str(n), event="count") for n in (1, 2, 3)
    ]
    assert response.content.startswith(b"event: count\r\ndata: 1\r\n\r\n")


def test_testing_streams_example(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.delitem(sys.modules, "first_stream", raising=False)
    module = load("testing_streams")
    fast_sleep_for(sys.modules["first_stream"], monkeypatch)
    module.test_count()


def test_testing_endless_example(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.delitem(sys.modules, "first_stream", raising=False)
    module = load("testing_endless")
    fast_sleep_for(sys.modules["first_stream"], monkeypatch)
    module.test_first_two_counts()


def test_browser_client_listens_to_the_first_stream() -> None:
    script = (EXAMPLES / "browser_client.js").read_text()
    assert 'new EventSource("/count?limit=5")' in script
    assert 'addEventListener("count"' in script


@pytest.mark.anyio
async def test_python_client_reads_events(monkeypatch: pytest.MonkeyPatch) -> None:
    module = load("python_client")
    first = load("first_stream")
    fast_sleep_for(first, monkeypatch)
    transport = httpx.ASGITransport(app=first.app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        events = await module.read_events(client, "/count?limit=2")
    assert [(event.event, event.data, event.id) for event in events] == [
        ("count", "1", ""),
        ("count", "2", ""),
    ]


# -- responses and yields ----------------------------------------------------------------------


def test_every_kind_of_yield() -> None:
    events = events_of(load("yields").app, "/kinds")
    assert events == [
        DecodedEvent("42"),
        DecodedEvent("two\nlines"),
        DecodedEvent("café"),
        DecodedEvent("hello", "greeting", "1"),
        DecodedEvent("bye", "greeting", "2", retry=10_000),
        DecodedEvent("written as is", "raw", "2"),
        DecodedEvent('{"symbol":"ACME","value":12.5}', "message", "2"),
    ]


def test_response_fields_are_defaults_of_every_event() -> None:
    response = fetch(load("response_fields").app, "/updates")
    assert decode_stream(response.content) == [
        DecodedEvent("first", "update", retry=5_000),
        DecodedEvent("second", "update", retry=5_000),
        DecodedEvent("done", "end", retry=5_000),
    ]
    assert response.content.count(b"retry:") == 3


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/one", ["just this"]),
        ("/list", ["a", "b", "c"]),
        ("/blocking", ["x", "y"]),
        ("/async", ["0", "1", "2"]),
        ("/lazy", ["0", "1", "2"]),
    ],
)
def test_content_sources(path: str, expected: list[str]) -> None:
    assert data_of(events_of(load("sources").app, path)) == expected


def test_plain_stream_is_ndjson() -> None:
    response = fetch(load("plain_stream").app, "/export.ndjson")
    assert response.headers["content-type"] == "application/x-ndjson"
    assert response.content == b'{"row":0}\n{"row":1}\n{"row":2}\n'


# -- typed data --------------------------------------------------------------------------------


def test_typed_data_is_json() -> None:
    events = events_of(load("typed_data").app, "/market")
    assert data_of(events) == [
        '{"symbol":"ACME","price":"12.50","at":"2026-01-02T09:30:00Z"}',
        '{"symbol":"ACME","bid":12.45,"ask":12.55}',
        '{"level":"info","text":"market open"}',
        '"12.50 EUR"',
        '{"symbol":"INIT","bid":1.0,"ask":1.1}',
        '{"plain":"dict"}',
    ]
    assert [event.event for event in events][-2:] == ["quote", "snapshot"]
    assert events[-2].id == "q-1"


# -- pings and timeouts ------------------------------------------------------------------------


def test_pings_fill_the_silence(monkeypatch: pytest.MonkeyPatch) -> None:
    module = load("pings")
    monkeypatch.setattr(module, "PING_INTERVAL", 0.05)
    monkeypatch.setattr(module, "WORK_SECONDS", 0.25)
    response = fetch(module.app, "/job")
    items = EventDecoder().feed_with_comments(response.content)
    events = [item for item in items if isinstance(item, DecodedEvent)]
    pings = [item for item in items if isinstance(item, DecodedComment)]
    assert data_of(events) == ["1", "2", "3"]
    assert {event.event for event in events} == {"step"}
    assert pings
    assert {ping.text for ping in pings} == {"keep-alive"}
    # A ping is a comment line of its own, never written inside an event, with no blank line
    # after it (a blank line alone is an empty event to some client decoders).
    assert b"\r\n\r\n: keep-alive\r\n" in response.content
    assert b": keep-alive\r\n\r\n" not in response.content


def test_pings_come_every_ping_interval_with_a_send_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = load("pings")
    monkeypatch.setattr(module, "PING_INTERVAL", 0.05)
    monkeypatch.setattr(module, "WORK_SECONDS", 0.3)
    items = EventDecoder().feed_with_comments(fetch(module.app, "/job").content)
    kinds = ["ping" if isinstance(item, DecodedComment) else "event" for item in items]
    # Every silent step of 0.3 s holds several pings, not just the first one.
    assert kinds.count("ping") >= 6
    gaps = "".join("p" if kind == "ping" else "|" for kind in kinds).split("|")[:3]
    assert all(len(gap) >= 2 for gap in gaps), kinds


def test_pings_are_off_by_default() -> None:
    module = load("response_fields")
    response = fetch(module.app, "/updates")
    items = EventDecoder().feed_with_comments(response.content)
    assert not [item for item in items if isinstance(item, DecodedComment)]


# -- disconnects and cleanup -------------------------------------------------------------------


@pytest.mark.anyio
async def test_async_generator_cleans_up_with_await(monkeypatch: pytest.MonkeyPatch) -> None:
    module = load("cleanup_async")
    room = module.room
    listeners_seen_by_callback: list[int] = []
    original_callback = module.client_left

    async def client_left() -> None:
        listeners_seen_by_callback.append(len(room.listeners))
        await original_callback()

    monkeypatch.setattr(module, "client_left", client_left)

    original_join = room.join

    async def join() -> asyncio.Queue[str]:
        queue: asyncio.Queue[str] = await original_join()
        for word in ("hello", "there", "again"):
            room.say(word)
        return queue

    monkeypatch.setattr(room, "join", join)
    chunks = await stream_then_disconnect(module.app, "/room", chunks=2)
    assert data_of(decode_stream(chunks))[:2] == ["hello", "there"]
    assert room.listeners == set()  # ``finally`` awaited room.leave()
    assert listeners_seen_by_callback == [0]  # on_disconnect ran once, after the cleanup


@pytest.mark.anyio
async def test_sync_generator_is_closed_in_its_thread() -> None:
    module = load("cleanup_sync")
    for value in (20.5, 21.0):
        module.readings.put(value)
    chunks = await stream_then_disconnect(module.app, "/sensor", chunks=1)
    assert decode_stream(chunks)[0] == DecodedEvent("20.5", "reading")
    for _ in range(250):  # the worker notices within a second (the example's get timeout)
        if module.closed_in:
            break
        await asyncio.sleep(0.02)
    assert module.closed_in == ["litestar-sse-sync-iterator"]
    assert threading.current_thread().name not in module.closed_in


def test_sync_generator_idle_message_is_a_comment_only() -> None:
    module = load("cleanup_sync")
    assert module.IDLE.encode() == b": idle\r\n"  # no blank line: no decoder dispatches
    assert decode_stream(module.IDLE.encode()) == []


def test_producer_errors_become_an_error_event() -> None:
    events = events_of(load("producer_errors").app, "/pages")
    assert events == [
        DecodedEvent("page 1"),
        DecodedEvent("upstream unavailable", "error", retry=60_000),
    ]


# -- wire format -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["codec_encode", "codec_decode"])
def test_codec_examples_hold(name: str) -> None:
    load(name)  # each is a list of asserts about the codec


def test_codec_validation() -> None:
    module = load("codec_validation")
    messages = [module.refusal(fields) for fields in module.BAD_FIELDS]
    for message, field in zip(messages, ("event", "id", "retry", "sep"), strict=True):
        assert message.startswith(f"SSE {field} ")
    assert module.refused_at_construction().startswith("SSE event_type must not contain CR or LF")


# -- migration ---------------------------------------------------------------------------------


def test_migrate_from_litestar_before_and_after() -> None:
    before = fetch(load("migrate_litestar_before").app, "/scores").content
    after = fetch(load("migrate_litestar_after").app, "/scores").content
    expected = [
        *(DecodedEvent(f'{{"team":"blue","points":{n}}}', "score") for n in range(3)),
        DecodedEvent("final", "end"),
    ]
    assert decode_stream(before) == expected
    assert decode_stream(after) == expected


def test_migrate_from_sse_starlette_after(capsys: pytest.CaptureFixture[str]) -> None:
    events = events_of(load("migrate_sse_starlette_after").app, "/ticks")
    assert events == [
        DecodedEvent("0", "tick", "0"),
        DecodedEvent("1", "tick", "1"),
        DecodedEvent("2", "tick", "2"),
        DecodedEvent('{"ticks":3}', "summary", "2"),
    ]


def test_migrate_from_fastapi_after() -> None:
    app = load("migrate_fastapi_after").app
    assert data_of(events_of(app, "/items/stream")) == [
        '{"name":"kettle","price":25.0}',
        '{"name":"mug","price":8.5}',
    ]
    assert events_of(app, "/chat", method="POST") == [
        DecodedEvent("Hello", "token", "1"),
        DecodedEvent('{"done":true}', "end", "1"),
    ]


def test_migrate_from_sse_starlette_before() -> None:
    pytest.importorskip("sse_starlette")
    starlette_testclient = pytest.importorskip("starlette.testclient")
    with starlette_testclient.TestClient(load("migrate_sse_starlette_before").app) as client:
        body = client.get("/ticks").content
    assert data_of(decode_stream(body)) == ["0", "1", "2", '{"ticks": 3}']


def test_migrate_from_fastapi_before() -> None:
    pytest.importorskip("fastapi.sse")
    starlette_testclient = pytest.importorskip("starlette.testclient")
    with starlette_testclient.TestClient(load("migrate_fastapi_before").app) as client:
        body = client.get("/items/stream").content
    assert len(decode_stream(body)) == 2


# -- deployment --------------------------------------------------------------------------------


def test_streams_are_not_compressed_but_other_responses_are() -> None:
    app = load("compression").app
    with TestClient(app) as client:
        stream = client.get("/events/news", headers={"Accept-Encoding": "gzip"})
        report = client.get("/report", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in stream.headers
    assert data_of(decode_stream(stream.content)) == ["all quiet"]
    assert report.headers["content-encoding"] == "gzip"
    assert report.text.startswith("a large report")  # httpx decompressed it
    assert len(gzip.compress(report.content)) < len(report.content)


def test_sse_headers_for_proxies() -> None:
    response = fetch(load("response_fields").app, "/updates")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    assert response.headers["connection"] == "keep-alive"  # HTTP/1.1 only, never on HTTP/2


@pytest.mark.anyio
async def test_no_connection_header_on_http2() -> None:
    app = load("response_fields").app
    headers: list[tuple[bytes, bytes]] = []
    sent_request = False

    async def receive() -> dict[str, Any]:
        nonlocal sent_request
        if not sent_request:
            sent_request = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            headers.extend(message["headers"])

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "2",
        "method": "GET",
        "scheme": "https",
        "path": "/updates",
        "raw_path": b"/updates",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"test")],
        "client": ("127.0.0.1", 50000),
        "server": ("test", 443),
        "state": {},
    }
    await asyncio.wait_for(app(scope, receive, send), timeout=10)  # type: ignore[arg-type]
    names = {name.lower() for name, _ in headers}
    assert b"connection" not in names
    assert b"x-accel-buffering" in names


def test_nginx_config_disables_buffering() -> None:
    config = (EXAMPLES / "nginx.conf").read_text()
    for directive in ("proxy_buffering off;", "gzip off;", "proxy_read_timeout", "http2 on;"):
        assert directive in config


# -- broadcast ---------------------------------------------------------------------------------


def broadcaster_of(app: Litestar) -> Any:
    from litestar_sse import SSEPlugin

    broadcaster = app.plugins.get(SSEPlugin).config.broadcaster
    assert broadcaster is not None
    return broadcaster


def test_broadcast_app_publishes_to_every_subscriber_and_resumes() -> None:
    app = load("broadcast_app").app
    with TestClient(app) as client:
        with (
            sse_stream(client, "GET", "/matches/final/events") as one,
            sse_stream(client, "GET", "/matches/events?match=final&match=semi") as both,
        ):
            semi = client.post("/matches/semi/score", json={"home": 0, "away": 1}).json()["id"]
            final = client.post("/matches/final/score", json={"home": 2, "away": 1}).json()["id"]
            (event,) = islice(one, 1)
            assert (event.event, event.id, json.loads(event.data)) == (
                "score",
                final,
                {"home": 2, "away": 1},
            )
            assert [e.id for e in islice(both, 2)] == [semi, final]  # publication order
        assert client.post("/matches/Final!/score", json={"home": 1, "away": 0}).status_code == 400
        missed = client.post("/matches/final/score", json={"home": 3, "away": 1}).json()["id"]
        with sse_stream(client, "GET", "/matches/final/events", last_event_id=final) as again:
            assert again.headers["SSE-Resumed-From"] == final
            assert next(iter(again)).id == missed


def test_broadcast_client_handles_the_gap_event() -> None:
    script = (EXAMPLES / "broadcast_client.js").read_text()
    assert 'new EventSource("/matches/final/events")' in script
    assert 'addEventListener("score"' in script
    assert 'addEventListener("gap"' in script
    assert "JSON.parse(event.data)" in script


def test_broadcast_options_retention_policy_and_authorization() -> None:
    from litestar_sse.broadcast import Retention

    module = load("broadcast_options")
    assert module.retention_of("room:lobby") == Retention(max_events=10_000, max_age=3600)
    assert module.retention_of("prices") == Retention(max_events=100)
    with TestClient(module.app) as client:
        with sse_stream(client, "GET", "/inbox/ada") as anonymous:
            assert anonymous.status_code == 401  # the guard
        with sse_stream(client, "GET", "/inbox/ada", headers={"X-User": "bob"}) as other:
            assert other.status_code == 403  # authorize
        with sse_stream(client, "GET", "/inbox/ada", headers={"X-User": "ada"}) as mine:
            assert mine.status_code == 200
            client.blocking_portal.call(module.broadcaster.publish, "user:ada", "hello ada")
            assert next(iter(mine)).data == "hello ada"


@pytest.mark.anyio
async def test_broadcast_options_slow_subscribers_skip_to_the_newest() -> None:
    module = load("broadcast_options")
    async with module.broadcaster as broadcaster:
        subscription = await broadcaster.open_subscription("prices")
        for price in range(600):
            await broadcaster.publish("prices", price)
        events = decode_stream((await subscription.__anext__()).encode())  # the gap event
        while len(events) < 501:
            events += decode_stream((await subscription.__anext__()).encode())
        subscription.close()
    gap, *rest = events
    assert (gap.event, json.loads(gap.data)) == ("gap", {"reason": "overflow", "dropped": 100})
    assert [event.data for event in rest] == [str(price) for price in range(100, 600)]
    assert broadcaster.stats().dropped == 100


def test_broadcast_metrics_are_served_by_litestars_prometheus_controller(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import litestar.plugins.prometheus.controller as controller
    from prometheus_client import CollectorRegistry
    from prometheus_client.parser import text_string_to_metric_families

    import litestar_sse.metrics

    registry = CollectorRegistry()  # a registry of this test's own, not the process's
    monkeypatch.setattr(controller, "REGISTRY", registry)
    real_register = litestar_sse.metrics.register_metrics
    monkeypatch.setattr(
        litestar_sse.metrics,
        "register_metrics",
        lambda broadcasters: real_register(broadcasters, registry=registry),
    )
    app = load("broadcast_metrics").app
    with TestClient(app) as client:
        client.blocking_portal.call(broadcaster_of(app).publish, "news", "x")
        response = client.get("/metrics")
    samples = {
        (sample.name, tuple(sample.labels.values())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }
    assert samples[("litestar_sse_broadcast_published_total", ("main",))] == 1
    assert samples[("litestar_sse_broadcast_subscribers", ("main",))] == 0
    assert ("litestar_sse_streams_open", ()) in samples


def test_broadcast_gc_freezes_while_the_app_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    import gc

    module = load("broadcast_gc")
    refreezes: list[int] = []
    real_refreeze = module.refreeze

    def counting_refreeze() -> None:
        real_refreeze()
        refreezes.append(gc.get_freeze_count())

    monkeypatch.setattr(module, "refreeze", counting_refreeze)
    monkeypatch.setattr(module, "REFREEZE_EVERY", 0.02)
    before = gc.get_freeze_count()  # not 0 everywhere: Python 3.12.1 starts with 375
    with TestClient(module.app):
        wait_until_sync(lambda: len(refreezes) >= 3)
        assert gc.get_freeze_count() > before
    assert len(refreezes) >= 3  # at startup, then every period
    assert all(count > before for count in refreezes)
    assert gc.get_freeze_count() == 0  # unfrozen at shutdown


def test_broadcast_redis_shares_rooms_between_processes(
    redis_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    one, two = load("broadcast_redis").app, load("broadcast_redis").app  # two workers
    with TestClient(one) as worker_one, TestClient(two) as worker_two:
        with sse_stream(worker_two, "GET", "/rooms/lobby/events") as stream:
            sent = worker_one.post("/rooms/lobby/messages", content=b"hello from one").json()
            event = next(iter(stream))
        assert (event.event, event.id, event.data) == ("message", sent["id"], "hello from one")


def test_broadcast_retry_route_stores_a_message_once_per_idempotency_key() -> None:
    app = load("broadcast_retry").app
    with TestClient(app) as client:
        broadcaster = broadcaster_of(app)
        subscription = client.blocking_portal.call(broadcaster.open_subscription, "room:lobby")
        headers = {"Idempotency-Key": "msg-1"}
        first = client.post("/rooms/lobby/messages", json={"text": "hi"}, headers=headers)
        again = client.post("/rooms/lobby/messages", json={"text": "hi"}, headers=headers)
        assert first.status_code == again.status_code == 201
        assert first.json() == again.json()
        other = client.post("/rooms/lobby/messages", json={"text": "hi"}).json()["id"]
        bad = client.post("/rooms/lobby/messages", json={}, headers={"Idempotency-Key": "a\x01"})
        assert bad.status_code == 400
        chunk = client.blocking_portal.call(subscription.__anext__).encode()
        assert decode_stream(chunk) == [
            DecodedEvent(data='{"text":"hi"}', event="message", id=first.json()["id"]),
            DecodedEvent(data='{"text":"hi"}', event="message", id=other),
        ]
        subscription.close()


@pytest.mark.anyio
async def test_broadcast_retry_publishes_once_through_a_redis_stall(
    redis_process: Any,
) -> None:

    from litestar_sse.broadcast import Broadcaster, RedisStreamBackend

    module = load("broadcast_retry")
    server = redis_process()
    backend = RedisStreamBackend(server.url, prefix="retry:", publish_timeout=0.3)
    async with Broadcaster(backend) as broadcaster:
        subscription = await broadcaster.open_subscription("t")
        await broadcaster.publish("t", "warm")  # an idle connection in the pool
        assert b"data: warm" in (await subscription.__anext__()).encode()
        with server.stalled():
            publishing = asyncio.ensure_future(
                module.publish_reliably(broadcaster, "t", "once", attempts=8)
            )
            await asyncio.sleep(1.0)  # a few attempts fail meanwhile
            assert not publishing.done()
        event_id = await publishing
        marker = await broadcaster.publish("t", "after")
        received = b""
        while b"data: after" not in received:
            received += (await asyncio.wait_for(subscription.__anext__(), 10)).encode()
        assert [e.id for e in decode_stream(received) if e.data == "once"] == [event_id]
        assert decode_stream(received)[-1].id == marker
        subscription.close()


# -- the plugin --------------------------------------------------------------------------------


def test_plugin_defaults_apply_unless_the_response_sets_its_own() -> None:
    from litestar.testing import RequestFactory

    from litestar_sse._plugin.registry import ManagedSSEResponse

    module = load("plugin_defaults")
    news = fetch(module.app, "/news")
    assert news.content == (
        b"retry: 3000\r\n"  # the config's retry, once, in the first event
        b"event: news\r\ndata: markets open\r\n\r\n"
        b"event: news\r\ndata: rain expected\r\n\r\n"
    )
    assert news.headers["x-stream-version"] == "2"
    assert news.headers["cache-control"] == "no-cache"
    alerts = fetch(module.app, "/alerts")
    assert alerts.content == (
        b"retry: 10000\r\ndata: markets open\r\n\r\nretry: 10000\r\ndata: rain expected\r\n\r\n"
    )
    assert alerts.headers.get_list("x-stream-version") == ["3"]  # the route's header wins

    request = RequestFactory(app=module.app).get("/")
    inherited = asyncio.run(module.news.fn()).to_asgi_response(None, request)
    explicit = asyncio.run(module.alerts.fn()).to_asgi_response(None, request)
    assert isinstance(inherited, ManagedSSEResponse)
    assert isinstance(explicit, ManagedSSEResponse)
    assert (inherited.ping_interval, inherited.send_timeout) == (20.0, 30.0)
    assert (explicit.ping_interval, explicit.send_timeout) == (None, 30.0)


# -- generator handlers ------------------------------------------------------------------------


def test_generator_handlers_markers_and_typed_items() -> None:
    app = load("generator_handlers").app
    assert events_of(app, "/ticks") == [DecodedEvent("0"), DecodedEvent("1"), DecodedEvent("2")]
    assert data_of(events_of(app, "/lines")) == ["first", "second"]
    assert events_of(app, "/quotes") == [
        DecodedEvent('{"symbol":"ACME","price":12.5}'),
        DecodedEvent('{"symbol":"INIT","price":1.1}'),  # the dict, validated as a Quote
        DecodedEvent("market closed", "close"),
    ]


def test_generator_post_streams_tokens_with_status_200() -> None:
    app = load("generator_post").app
    events = events_of(app, "/chat", method="POST", json={"text": "hello there"})
    assert data_of(events) == ['{"text":"hello"}', '{"text":"there"}', "[DONE]"]
    with TestClient(app) as client:
        assert client.post("/chat", json={"wrong": 1}).status_code == 400  # body validated


def test_generator_errors_before_and_during_the_stream(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from litestar_sse import SSEPlugin

    module = load("generator_errors")
    # Creating an app with Litestar's default logging config replaces the root logger's
    # handlers, caplog's included: listen on the package's logger, in an app without one.
    quiet_app = Litestar([module.room], plugins=[SSEPlugin()], **WITHOUT_APP_LOGGING)
    logger = logging.getLogger("litestar_sse")
    logger.addHandler(caplog.handler)
    try:
        assert data_of(events_of(quiet_app, "/rooms/broken")) == ['{"text":"fine"}']
    finally:
        logger.removeHandler(caplog.handler)
    assert "Expected `str`, got `int`" in caplog.text

    app = module.app
    assert data_of(events_of(app, "/rooms/lobby")) == ['{"text":"welcome"}', '{"text":"hello"}']
    with TestClient(app) as client:
        missing = client.get("/rooms/nowhere")
    assert missing.status_code == 404
    assert missing.json()["detail"] == "No room named 'nowhere'"


# -- OpenAPI -----------------------------------------------------------------------------------


def test_openapi_fragment_in_the_docs_is_what_the_app_generates() -> None:
    from openapi_spec_validator import validate

    module = load("openapi_stream")
    doc = module.app.openapi_schema.to_schema()
    fragment = json.loads((EXAMPLES / "openapi_fragment.json").read_text())
    response = fragment["paths"]["/chat"]["post"]["responses"]["200"]
    assert doc["paths"]["/chat"]["post"]["responses"]["200"] == response
    assert doc["components"]["schemas"]["Token"] == fragment["components"]["schemas"]["Token"]
    assert doc["openapi"] == "3.1.0"
    validate(doc)

    doc_32 = module.app_32.openapi_schema.to_schema()
    media = doc_32["paths"]["/chat"]["post"]["responses"]["200"]["content"]["text/event-stream"]
    assert media == {"itemSchema": response["content"]["text/event-stream"]["schema"]}
    with pytest.raises(Exception, match="'itemSchema' was unexpected"):
        validate(doc_32)  # labelled 3.1.0, which has no itemSchema
    validate({**doc_32, "openapi": "3.2.0"})


# -- Last-Event-ID and resume ------------------------------------------------------------------


def test_resume_feed_resumes_after_the_id(monkeypatch: pytest.MonkeyPatch) -> None:
    module = load("resume_feed")
    monkeypatch.setattr(module, "POLL_SECONDS", 0.01)
    with TestClient(module.app) as client:
        with sse_stream(client, "GET", "/orders", last_event_id="1") as stream:
            assert list(islice(stream, 2)) == [
                DecodedEvent("mug", "order", "2", retry=2000),  # the app's retry, in the first
                DecodedEvent("teapot", "order", "3"),
            ]
            assert stream.body.startswith(b"retry: 2000\r\nevent: order\r\nid: 2\r\n")
            module.ORDERS.append(module.Order(4, "cup"))  # a new order, while connected
            assert next(iter(stream)) == DecodedEvent("cup", "order", "4")
        first_ids = {}
        for name, kwargs in {
            "query": {"params": {"lastEventId": "2"}},
            "header wins": {"params": {"lastEventId": "1"}, "last_event_id": "3"},
            "not a number": {"last_event_id": "abc"},
            "too long": {"last_event_id": "1" * 2000},
            "none": {},
        }.items():
            with sse_stream(client, "GET", "/orders", **kwargs) as stream:
                first_ids[name] = next(iter(stream)).id
    assert first_ids == {
        "query": "3",
        "header wins": "4",
        "not a number": "1",
        "too long": "1",
        "none": "1",
    }


def test_resume_client_saves_the_id_and_reconnects_when_closed() -> None:
    script = (EXAMPLES / "resume_client.js").read_text()
    assert "/orders?lastEventId=${encodeURIComponent(saved)}" in script
    assert "localStorage.setItem(STORAGE_KEY, event.lastEventId)" in script
    assert "source.readyState === EventSource.CLOSED" in script


# -- lifecycle ---------------------------------------------------------------------------------


def lifecycle_app(**changes: Any) -> Litestar:
    import dataclasses

    from litestar_sse import SSEPlugin

    module = load("lifecycle_limits")
    config = dataclasses.replace(module.config, **changes)
    return Litestar([module.feed], plugins=[SSEPlugin(config)])


def test_lifecycle_connection_limit_answers_503() -> None:
    app = lifecycle_app(max_connections=1)
    with TestClient(app) as client, sse_stream(client, "GET", "/feed") as first:
        assert first.status_code == 200
        with sse_stream(client, "GET", "/feed") as refused:
            assert refused.status_code == 503
            assert refused.headers["retry-after"] == "10"
            assert list(refused) == []


def test_lifecycle_max_lifetime_ends_the_stream() -> None:
    app = lifecycle_app(max_lifetime=0.2)
    with TestClient(app) as client, sse_stream(client, "GET", "/feed") as stream:
        assert data_of(list(stream)) == ["1"]  # the lifetime event has no data: not dispatched
        assert stream.ended
        assert stream.comments == ["lifetime reached"]
        assert stream.body.endswith(b": lifetime reached\r\nretry: 0\r\n\r\n")


def test_lifecycle_shutdown_sends_the_shutdown_event() -> None:
    from litestar_sse._plugin.config import STATE_KEY

    app = load("lifecycle_limits").app
    registry = app.state[STATE_KEY].registry
    with TestClient(app) as client, sse_stream(client, "GET", "/feed") as stream:
        assert next(iter(stream)).data == "1"
        # What the plugin's SIGTERM/SIGINT handler schedules on the app's loop.
        client.blocking_portal.call(registry.begin_shutdown, 5.0)
        assert list(stream) == [DecodedEvent("restarting", "shutdown", retry=5_000)]
        assert stream.ended


def test_lifecycle_head_gets_headers_only() -> None:
    with TestClient(load("lifecycle_limits").app) as client:
        response = client.head("/feed")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.content == b""


# -- testing -----------------------------------------------------------------------------------


def test_testing_page_examples_pass_under_pytest() -> None:
    import subprocess

    files = [EXAMPLES / f"{name}.py" for name in ("testing_sse_stream", "testing_async_stream")]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *map(str, files)],
        cwd=EXAMPLES.parents[1],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "7 passed" in result.stdout


def test_testing_app_defaults() -> None:
    module = load("testing_app")
    assert module.app.plugins.get(module.SSEPlugin).config.ping_interval == 15.0
    events = events_of(module.app, "/ticks?limit=2", headers={"Last-Event-ID": "5"})
    assert [event.id for event in events] == ["6", "7"]


def test_testing_other_clients_decode_any_body() -> None:
    module = load("testing_other_clients")
    with TestClient(load("testing_app").app) as client:
        events = module.first_events(client, "/ticks?limit=5", 2)
    assert events == [DecodedEvent("tick 1", "tick", "1"), DecodedEvent("tick 2", "tick", "2")]


# -- README ------------------------------------------------------------------------------------

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_python_blocks() -> list[str]:
    text = README.read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def run_readme_block(block: str, name: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    module = ModuleType(name)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(block, "README.md", "exec"), module.__dict__)
    return module


def test_every_readme_python_block_is_a_whole_app(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each block runs as it is, as the file a reader saves: no name left for them to guess."""
    blocks = readme_python_blocks()
    assert blocks
    for index, block in enumerate(blocks):
        module = run_readme_block(block, f"readme_block_{index}", monkeypatch)
        assert isinstance(module.app, Litestar), f"README python block {index} builds no app"


def test_readme_first_stream_sends_what_the_readme_shows(monkeypatch: pytest.MonkeyPatch) -> None:
    (block,) = [
        block for block in readme_python_blocks() if "app = Litestar([stream_ticks" in block
    ]
    module = run_readme_block(block, "readme_first_stream", monkeypatch)
    fast_sleep_for(module, monkeypatch)
    response = fetch(module.app, "/ticks")
    assert decode_stream(response.content) == [
        DecodedEvent(f'{{"n":{n}}}', "tick", str(n)) for n in (1, 2, 3)
    ]
    # What the README's curl shows is the body, byte for byte but for the CRLF line ends.
    (shown,) = re.findall(
        r"```console\n\$ curl -N http://127\.0\.0\.1:8000/ticks\n(.*?)```",
        README.read_text(encoding="utf-8"),
        flags=re.DOTALL,
    )
    assert response.content.decode().replace("\r\n", "\n") == shown


def test_readme_links_point_at_files_of_the_repository() -> None:
    root = README.parent
    targets = re.findall(r"\]\(([^)#]+)\)", README.read_text(encoding="utf-8"))
    local = [target for target in targets if "://" not in target]
    assert local
    assert [target for target in local if not (root / target).is_file()] == []


def _iter_python_examples() -> Iterator[str]:
    for path in sorted(EXAMPLES.glob("*.py")):
        yield path.stem


def test_every_python_example_is_tested() -> None:
    source = "".join(path.read_text() for path in Path(__file__).parent.glob("test_*.py"))
    untested = [name for name in _iter_python_examples() if f'"{name}"' not in source]
    assert untested == []


def test_dead_peers_serves_on_a_socket_with_a_user_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    import uvicorn

    served: list[tuple[uvicorn.Config, list[socket.socket]]] = []
    monkeypatch.setattr(
        uvicorn.Server, "run", lambda self, sockets=None: served.append((self.config, sockets))
    )
    load("dead_peers").main("first_stream:app", "127.0.0.1", 0)
    [(config, [sock])] = served
    with sock:
        assert config.app == "first_stream:app"
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 30_000


# -- route settings --------------------------------------------------------------------------


def test_route_settings_override_the_app() -> None:
    module = load("route_settings")
    with TestClient(module.app) as client:
        with sse_stream(client, "GET", "/ticker") as stream:
            assert stream.read().startswith(b"retry: 3000\r\ndata: 0\r\n\r\n")
        with sse_stream(client, "POST", "/v1/completions") as stream:
            assert stream.read() == b"data: Hello\r\n\r\ndata: [DONE]\r\n\r\n"
        with sse_stream(client, "GET", "/quiet") as stream:
            assert stream.read() == b"retry: 3000\r\ndata: shh\r\n\r\n"


# -- the Python client -------------------------------------------------------------------------


@post("/v1/completions")
async def _completions(data: JSONBody[dict[str, Any]]) -> ServerSentEvent:
    async def tokens() -> AsyncIterator[str]:
        for token in ("Hel", "lo ", data["prompt"]):
            yield json.dumps({"token": token})
        if data.get("stream"):
            yield "[DONE]"  # as OpenAI's API ends a stream

    return ServerSentEvent(tokens())


def _completions_app() -> Litestar:
    return Litestar([_completions])


@pytest.mark.anyio
async def test_client_post_reads_an_llm_style_stream() -> None:
    module = load("client_post")
    transport = httpx.ASGITransport(app=_completions_app())  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert await module.complete(client, "you") == "Hello you"


@pytest.mark.anyio
async def test_migrating_from_httpx_sse_reads_the_same_tokens() -> None:
    pytest.importorskip("httpx_sse")
    before, after = load("migrate_httpx_sse_before"), load("migrate_httpx_sse_after")
    app = _completions_app()
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        old = await before.tokens(client, "/v1/completions")
        new = await after.tokens(client, "/v1/completions")
    assert old == new == ["Hel", "lo ", "hi"]


@pytest.mark.anyio
async def test_client_follow_decodes_scores_and_reports_a_gap(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tests.client.wire import Seen, head, serving, write

    async def answer(seen: Seen, index: int, writer: asyncio.StreamWriter) -> None:
        if index == 0:
            assert seen.headers["last-event-id"] == "a-1"
            body = (
                b'retry: 20\nid: a-2\ndata: {"home":1,"away":0}\n\n'
                b'event: gap\nid: a-9\ndata: {"reason":"retention","topics":["m"]}\n\n'
                b'id: a-10\ndata: {"home":2,"away":0}\n\n'
            )
            await write(writer, head(200, "SSE-Gap: retention") + body)
        else:
            await write(writer, head(204))

    module = load("client_follow")
    async with serving(answer) as server:
        await module.follow(server.url + "/matches/final/events", last_event_id="a-1")
    assert capsys.readouterr().out.splitlines() == [
        "a-2 1 0",
        "missed events (retention); resuming after a-9",
        "a-10 2 0",
    ]


def test_client_sync_reads_the_first_events_and_leaves() -> None:
    from tests.client.wire import Seen, forever, head, serving_in_thread, write

    async def answer(seen: Seen, index: int, writer: asyncio.StreamWriter) -> None:
        await write(writer, head() + b"data: 1\n\ndata: 2\n\ndata: 3\n\n")
        await forever()

    module = load("client_sync")
    with serving_in_thread(answer) as server:
        assert module.first_events(server.url, 2) == ["1", "2"]
        assert len(server.requests) == 1
