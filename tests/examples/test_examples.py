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
from litestar_sse.testing import sse_stream


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


def test_demo_publishes_ticks_and_measured_figures_to_every_stream() -> None:
    with (
        TestClient(demo.app) as client,
        sse_stream(client, "GET", "/events") as first,
        sse_stream(client, "GET", "/events") as second,
    ):
        posted = client.post("/messages", json={"tab": "ab12", "text": "hi"})
        assert posted.status_code == 201
        for stream_ in (first, second):
            kinds: dict[str, list[DecodedEvent]] = {}
            for event in stream_:
                kinds.setdefault(event.event or "message", []).append(event)
                if "stats" in kinds and "chat" in kinds:
                    break
            assert json.loads(kinds["chat"][0].data) == {"tab": "ab12", "text": "hi"}
            assert kinds["chat"][0].id == posted.json()["id"]
            ticks = [json.loads(event.data)["n"] for event in kinds["tick"]]
            assert ticks == list(range(ticks[0], ticks[0] + len(ticks)))
        stats = json.loads(kinds["stats"][0].data)
    # Counted by the server, not made up: both streams were open when the sample was taken.
    assert stats["open_streams"] == 2
    assert stats["events_per_s"] > 0
    assert stats["deliveries_per_s"] >= stats["events_per_s"]
    assert set(stats) == {
        "uptime_s",
        "events_per_s",
        "deliveries_per_s",
        "open_streams",
        "resumes",
        "replayed",
        "gaps",
    }


def test_demo_resumes_from_history_or_sends_a_gap() -> None:
    with TestClient(demo.app) as client:
        with sse_stream(client, "GET", "/events") as stream_:
            seen = next(event for event in stream_ if event.event == "tick")
        with sse_stream(client, "GET", "/events", last_event_id=seen.id) as resumed:
            replayed = next(iter(resumed))
            assert resumed.headers["SSE-Resumed-From"] == seen.id
        assert "SSE-Gap" not in resumed.headers
        position = int(seen.id.rsplit("-", 1)[1])
        assert int(replayed.id.rsplit("-", 1)[1]) > position  # after it, nothing seen twice
        with sse_stream(client, "GET", "/events", last_event_id="0-1") as stale:
            gap = next(iter(stale))
        assert gap.event == "gap"
        assert stale.headers["SSE-Gap"] in {"epoch", "retention"}


def test_demo_runs_uvicorn_when_executed(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    uvicorn = pytest.importorskip("uvicorn")
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.append(kwargs))
    runpy.run_path(demo.__file__, run_name="__main__")
    assert calls == [{"host": "127.0.0.1", "port": 8000}]
