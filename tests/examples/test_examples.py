"""The runnable apps in ``examples/``: pages load, finite variants of the streams are right."""

from __future__ import annotations

import json
import runpy
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from examples import demo, llm_tokens, minimal, progress, typed_models
from litestar_sse.codec import DecodedEvent, decode_stream


def stream(client: TestClient[Litestar], path: str, **kwargs: Any) -> list[DecodedEvent]:
    response = client.request(kwargs.pop("method", "GET"), path, **kwargs)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    return decode_stream(response.content)


def page(client: TestClient[Litestar]) -> httpx.Response:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    return response


@pytest.mark.parametrize("module", [minimal, typed_models, progress, demo])
def test_pages_use_event_source(module: Any) -> None:
    with TestClient(module.app) as client:
        html = page(client).text
    assert "new EventSource(" in html
    assert "http://" not in html.replace("http://127.0.0.1", "")  # no CDN, no external asset
    assert "https://" not in html


def test_pages_are_self_contained() -> None:
    with TestClient(llm_tokens.app) as client:
        html = page(client).text
    assert 'fetch("/chat"' in html  # EventSource cannot POST
    assert "https://" not in html


# -- minimal -----------------------------------------------------------------------------------


def test_minimal_counts() -> None:
    with TestClient(minimal.app) as client:
        events = stream(client, "/count?limit=3&interval=0")
    assert [event.data for event in events] == ["1", "2", "3"]


# -- typed_models ------------------------------------------------------------------------------


def test_typed_models_sends_each_kind_as_json() -> None:
    with TestClient(typed_models.app) as client:
        events = stream(client, "/orders?limit=2&interval=0")
    assert [event.event for event in events] == ["placed", "shipped", "reviewed"] * 2
    assert [event.id for event in events][:3] == ["1.1", "1.2", "1.3"]
    placed, shipped, reviewed = (json.loads(event.data) for event in events[:3])
    assert set(placed) == {"order_id", "customer", "total", "placed_at"}
    assert isinstance(placed["total"], str)  # Decimal, as msgspec encodes it
    assert set(shipped) == {"order_id", "carrier", "tracking"}
    assert 1 <= reviewed["stars"] <= 5


def test_typed_models_plain_objects_are_message_events() -> None:
    with TestClient(typed_models.app) as client:
        events = stream(client, "/plain")
    assert [event.event for event in events] == ["message"] * 3
    assert json.loads(events[0].data)["customer"] == "ada"
    assert json.loads(events[1].data) == {
        "order_id": 1,
        "carrier": "DHL",
        "tracking": "TRK00000001",
    }
    assert json.loads(events[2].data) == {"order_id": 1, "stars": 5, "comment": "Perfect."}


# -- llm_tokens --------------------------------------------------------------------------------


def test_llm_tokens_then_done() -> None:
    with TestClient(llm_tokens.app) as client:
        events = stream(
            client, "/chat?delay=0", method="POST", json={"prompt": "Why SSE?", "max_tokens": 5}
        )
    *tokens, usage, done = events
    assert done == DecodedEvent("[DONE]")
    assert [json.loads(token.data)["index"] for token in tokens] == [0, 1, 2, 3, 4]
    text = "".join(json.loads(token.data)["text"] for token in tokens)
    assert text == "You asked about Why SSE."
    assert usage.event == "usage"
    assert json.loads(usage.data) == {
        "prompt_tokens": 2,
        "completion_tokens": 5,
        "finish_reason": "length",
    }


def test_llm_tokens_rejects_a_bad_prompt() -> None:
    with TestClient(llm_tokens.app) as client:
        response = client.post("/chat", json={"no_prompt": True})
    assert response.status_code == 400


# -- progress ----------------------------------------------------------------------------------


def test_progress_job_runs_to_done() -> None:
    with TestClient(progress.app) as client:
        created = client.post("/jobs?steps=4&delay=0")
        assert created.status_code == 201
        events = stream(client, created.json()["events"])
    *steps, done = events
    assert [json.loads(step.data)["percent"] for step in steps] == [25.0, 50.0, 75.0, 100.0]
    assert [step.id for step in steps] == ["1", "2", "3", "4"]
    assert {step.event for step in steps} == {"progress"}
    assert done.event == "done"


def test_progress_resumes_after_last_event_id() -> None:
    with TestClient(progress.app) as client:
        job = client.post("/jobs?steps=5&delay=0").json()
        events = stream(client, job["events"], headers={"Last-Event-ID": "3"})
    assert [event.id for event in events] == ["4", "5", "5"]  # the final event keeps id 5
    assert [event.event for event in events] == ["progress", "progress", "done"]


def test_progress_unknown_job_is_404() -> None:
    with TestClient(progress.app) as client:
        assert client.get("/jobs/nope/events").status_code == 404


# -- demo --------------------------------------------------------------------------------------


def test_demo_stream_has_named_events_with_ids() -> None:
    with TestClient(demo.app) as client:
        events = stream(client, "/events?limit=3&tick=0")
    kinds = [event.event for event in events]
    assert kinds[0] == "hello"
    assert events[0].retry == 2_000
    assert kinds.count("clock") == 3
    assert kinds.count("metrics") == 3
    assert set(kinds) <= {"hello", "clock", "metrics", "log"}
    ids = [int(event.id) for event in events]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    metrics = json.loads(next(e.data for e in events if e.event == "metrics"))
    assert metrics["viewers"] >= 1
    assert json.loads(events[0].data)["resumed_after"] is None


def test_demo_reports_where_a_reconnect_resumes() -> None:
    with TestClient(demo.app) as client:
        by_header = stream(client, "/events?limit=0", headers={"Last-Event-ID": "41"})
        by_query = stream(client, "/events?limit=0&last_event_id=42")
    assert json.loads(by_header[0].data)["resumed_after"] == "41"
    assert json.loads(by_query[0].data)["resumed_after"] == "42"


def test_demo_kick_ends_streams() -> None:
    with TestClient(demo.app) as client:
        response = client.post("/kick")
    assert response.status_code == 200
    assert set(response.json()) == {"ending"}


def test_demo_streams_release_their_viewer_slot() -> None:
    before = demo.board.viewers
    with TestClient(demo.app) as client:
        stream(client, "/events?limit=1&tick=0")
    assert demo.board.viewers == before


def test_demo_runs_uvicorn_when_executed(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    uvicorn = pytest.importorskip("uvicorn")
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.append(kwargs))
    runpy.run_path(demo.__file__, run_name="__main__")
    assert calls == [{"host": "127.0.0.1", "port": 8000}]
