"""Authorization over time: an expiry ``authorize`` returns, and periodic re-checks.

(Before, ``authorize`` ran only when subscribing: a revoked or expired credential kept its
stream and its events for ever.)
"""

from __future__ import annotations

import datetime
import json
import time
from typing import Any

import pytest
from conftest import ASGIStream, BackendFactory
from litestar import Litestar, Request, get
from litestar.params import FromQuery

from litestar_sse import ServerSentEvent
from litestar_sse.asgi.counters import COUNTERS
from litestar_sse.broadcast import Authorization, Broadcaster

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
