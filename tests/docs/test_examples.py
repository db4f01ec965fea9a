"""Every code sample of the docs (``docs/examples``) runs, and does what the docs say it does."""

from __future__ import annotations

import asyncio
import gzip
import importlib.util
import re
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from litestar_sse.codec import DecodedComment, DecodedEvent, EventDecoder, decode_stream

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
    assert events == [DecodedEvent("1", "count"), DecodedEvent("2", "count")]


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


def test_response_fields_apply_to_plain_items_only() -> None:
    response = fetch(load("response_fields").app, "/updates")
    assert decode_stream(response.content) == [
        DecodedEvent("first", "update", retry=5_000),
        DecodedEvent("second", "update", retry=5_000),
        DecodedEvent("done", "end"),
    ]
    assert response.content.count(b"retry:") == 2


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
    # A ping is a whole comment block of its own, never written inside an event.
    assert b": keep-alive\r\n\r\n" in response.content


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
    assert module.IDLE.encode() == b": idle\r\n\r\n"
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
    assert module.refused_at_construction().startswith("SSE event must not contain CR or LF")


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


# -- README ------------------------------------------------------------------------------------

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_python_blocks() -> list[str]:
    text = README.read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def test_readme_python_blocks_compile() -> None:
    blocks = readme_python_blocks()
    assert len(blocks) >= 2
    for block in blocks:
        compile(block, "README.md", "exec")


def test_readme_first_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    (block,) = [block for block in readme_python_blocks() if "app = Litestar(" in block]
    module = ModuleType("readme_first_stream")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(block, "README.md", "exec"), module.__dict__)
    fast_sleep_for(module, monkeypatch)
    response = fetch(module.app, "/ticks")
    assert decode_stream(response.content) == [
        DecodedEvent(f'{{"n":{n}}}', "tick", str(n)) for n in (1, 2, 3)
    ]
    assert response.content.startswith(b'event: tick\r\nid: 1\r\ndata: {"n":1}\r\n\r\n')


def _iter_python_examples() -> Iterator[str]:
    for path in sorted(EXAMPLES.glob("*.py")):
        yield path.stem


def test_every_python_example_is_tested() -> None:
    source = Path(__file__).read_text()
    untested = [name for name in _iter_python_examples() if f'"{name}"' not in source]
    assert untested == []
