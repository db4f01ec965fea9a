"""Tests with litestar_sse.testing.sse_stream: events as the app sends them."""

from collections.abc import Iterator
from itertools import islice

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from testing_app import create_app

from litestar_sse.codec import DecodedComment, DecodedEvent
from litestar_sse.testing import sse_stream


@pytest.fixture
def client() -> Iterator[TestClient[Litestar]]:
    with TestClient(create_app(ping_interval=0.05)) as client:  # runs the app's lifespan
        yield client


def test_first_ticks(client: TestClient[Litestar]) -> None:
    with sse_stream(client, "GET", "/ticks") as stream:  # endless: read what you need
        assert stream.status_code == 200
        assert stream.headers["content-type"] == "text/event-stream; charset=utf-8"
        first, second = islice(stream, 2)
    # Leaving the block disconnected: the handler's generator has been closed.
    assert first == DecodedEvent(data="tick 1", event="tick", id="1")
    assert second.id == "2"


def test_resumes_after_last_event_id(client: TestClient[Litestar]) -> None:
    with sse_stream(client, "GET", "/ticks", last_event_id="41") as stream:
        assert next(iter(stream)).data == "tick 42"
        assert stream.last_event_id == "42"  # what a browser would send when reconnecting


def test_reconnects_where_it_left_off(client: TestClient[Litestar]) -> None:
    with sse_stream(client, "GET", "/ticks") as first:
        next(iter(first))
    with sse_stream(client, "GET", "/ticks", last_event_id=first.last_event_id) as second:
        assert next(iter(second)).data == "tick 2"


def test_finite_stream_runs_to_its_end(client: TestClient[Litestar]) -> None:
    with sse_stream(client, "GET", "/ticks", params={"limit": 3}) as stream:
        assert [event.id for event in stream] == ["1", "2", "3"]  # stops at the end
        assert stream.ended
        assert stream.body.startswith(b"event: tick\r\nid: 1\r\ndata: tick 1\r\n\r\n")


def test_quiet_stream_only_pings(client: TestClient[Litestar]) -> None:
    with sse_stream(client, "GET", "/quiet", timeout=0.3) as stream:
        assert stream.headers["x-room"] == "quiet"
        events = iter(stream)
        assert next(events).data == "hello"
        with pytest.raises(TimeoutError):  # pings are not events: no event within 0.3 s
            next(events)
        assert set(stream.comments) == {"ping"}


def test_events_and_pings_in_order(client: TestClient[Litestar]) -> None:
    with sse_stream(client, "GET", "/quiet") as stream:
        items = list(islice(stream.iter_with_comments(), 2))
    assert items == [DecodedEvent("hello"), DecodedComment("ping")]
