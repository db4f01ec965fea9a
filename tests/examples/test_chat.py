"""``examples/chat.py`` on both backends: in memory, and on Redis (a throw-away redis-server)."""

from __future__ import annotations

import json
import runpy
from collections.abc import Callable, Iterator
from itertools import islice
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from examples import chat
from litestar_sse.broadcast import GAP_HEADER, RESUMED_FROM_HEADER
from litestar_sse.testing import sse_stream
from tests.redis_support import RedisProcess, unique_prefix

AppFactory = Callable[[], Litestar]


@pytest.fixture(params=["memory", "redis"])
def make_app(request: pytest.FixtureRequest) -> AppFactory:
    """Build a chat app; with Redis, every app of one test shares the rooms (one prefix)."""
    if request.param == "memory":
        return chat.create_app
    server: RedisProcess = request.getfixturevalue("redis_server")
    prefix = unique_prefix()
    return lambda: chat.create_app(server.url, prefix=prefix)


@pytest.fixture
def client(make_app: AppFactory) -> Iterator[TestClient[Litestar]]:
    with TestClient(make_app()) as client:
        yield client


def say(client: TestClient[Litestar], room: str, author: str, text: str) -> str:
    response = client.post(f"/rooms/{room}/messages", json={"author": author, "text": text})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_the_page_subscribes_with_event_source_and_has_no_external_assets() -> None:
    with TestClient(chat.create_app()) as client:
        response = client.get("/")
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert 'new EventSource(base + "/events"' in html
    assert 'addEventListener("gap"' in html
    assert 'fetch(base + "/messages"' in html
    assert "http://" not in html
    assert "https://" not in html


def test_every_subscriber_of_the_room_gets_each_message(client: TestClient[Litestar]) -> None:
    with (
        sse_stream(client, "GET", "/rooms/lobby/events") as ada,
        sse_stream(client, "GET", "/rooms/lobby/events") as bob,
        sse_stream(client, "GET", "/rooms/elsewhere/events") as other,
    ):
        assert ada.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert client.get("/stats").json()["subscribers"] == {"room:lobby": 2, "room:elsewhere": 1}
        first = say(client, "lobby", "ada", "hello")
        say(client, "elsewhere", "eve", "not for the lobby")
        second = say(client, "lobby", "bob", "hi ada")
        for stream in (ada, bob):
            events = list(islice(stream, 2))
            assert [event.id for event in events] == [first, second]
            assert {event.event for event in events} == {"message"}
            messages = [json.loads(event.data) for event in events]
            assert [(m["room"], m["author"], m["text"]) for m in messages] == [
                ("lobby", "ada", "hello"),
                ("lobby", "bob", "hi ada"),
            ]
            assert all(m["sent_at"].endswith("Z") for m in messages)
        assert json.loads(next(iter(other)).data)["text"] == "not for the lobby"
    stats = client.get("/stats").json()
    assert stats["subscribers"] == {}
    assert stats["published"] == 3
    assert stats["delivered"] == 5


def test_a_reconnecting_page_gets_the_messages_it_missed(client: TestClient[Litestar]) -> None:
    seen = say(client, "lobby", "ada", "seen")
    missed = [say(client, "lobby", "bob", f"missed {n}") for n in range(3)]
    say(client, "elsewhere", "eve", "other room")
    # EventSource reconnects with the header; a reloaded page passes the id in the query.
    for kwargs in ({"last_event_id": seen}, {"params": {"lastEventId": seen}}):
        with sse_stream(client, "GET", "/rooms/lobby/events", **kwargs) as stream:
            assert stream.headers[RESUMED_FROM_HEADER] == seen
            assert GAP_HEADER not in stream.headers
            events = list(islice(stream, 3))
        assert [event.id for event in events] == missed
        assert [json.loads(e.data)["text"] for e in events] == ["missed 0", "missed 1", "missed 2"]


def test_an_unknown_id_is_a_gap_event(client: TestClient[Litestar]) -> None:
    head = say(client, "lobby", "ada", "before")
    with sse_stream(client, "GET", "/rooms/lobby/events", last_event_id="from-another-app") as s:
        assert s.headers[GAP_HEADER] == "invalid"
        gap = next(iter(s))
        assert gap.event == "gap"
        assert gap.id == head  # the page resumes from here next time
        assert json.loads(gap.data)["reason"] == "invalid"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/rooms/Lobby/messages", {"author": "ada", "text": "hi"}),
        ("/rooms/no%20spaces/messages", {"author": "ada", "text": "hi"}),
        ("/rooms/lobby/messages", {"author": "ada", "text": ""}),
        ("/rooms/lobby/messages", {"author": "", "text": "hi"}),
        ("/rooms/lobby/messages", {"author": "ada", "text": "x" * 501}),
        ("/rooms/lobby/messages", {"text": "hi"}),
    ],
)
def test_bad_messages_and_rooms_are_refused(path: str, body: dict[str, Any]) -> None:
    with TestClient(chat.create_app()) as client:
        assert client.post(path, json=body).status_code == 400
        assert client.get("/stats").json()["published"] == 0


def test_workers_sharing_redis_see_each_others_messages(redis_server: RedisProcess) -> None:
    prefix = unique_prefix()
    one, two = (chat.create_app(redis_server.url, prefix=prefix) for _ in range(2))
    with TestClient(one) as client_one, TestClient(two) as client_two:
        earlier = say(client_one, "lobby", "ada", "from worker one")
        with sse_stream(client_two, "GET", "/rooms/lobby/events") as stream:
            later = say(client_one, "lobby", "bob", "live, across processes")
            event = next(iter(stream))
            assert (event.id, json.loads(event.data)["text"]) == (later, "live, across processes")
        # Resuming on the other worker with an id handed out by the first one is exact.
        with sse_stream(client_two, "GET", "/rooms/lobby/events", last_event_id=earlier) as s:
            assert s.headers[RESUMED_FROM_HEADER] == earlier
            assert next(iter(s)).id == later


def test_memory_backend_by_default_and_redis_with_redis_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from litestar_sse import SSEPlugin
    from litestar_sse.broadcast import MemoryBackend, RedisStreamBackend

    def backend_of(app: Litestar) -> Any:
        plugin = app.plugins.get(SSEPlugin)
        assert plugin.config.broadcaster is not None
        return plugin.config.broadcaster.backend

    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # never connected: not started
    module = runpy.run_path(chat.__file__, run_name="examples_chat_with_redis")
    assert isinstance(backend_of(module["app"]), RedisStreamBackend)
    monkeypatch.delenv("REDIS_URL")
    module = runpy.run_path(chat.__file__, run_name="examples_chat_in_memory")
    assert isinstance(backend_of(module["app"]), MemoryBackend)


def test_chat_runs_uvicorn_when_executed(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    uvicorn = pytest.importorskip("uvicorn")
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.append(kwargs))
    runpy.run_path(chat.__file__, run_name="__main__")
    assert calls == [{"host": "127.0.0.1", "port": 8000}]
