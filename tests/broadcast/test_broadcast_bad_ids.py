"""Garbage ``Last-Event-ID`` at a subscription endpoint: always a 200 stream, with a defined gap.

The rule (see :class:`~litestar_sse.broadcast.Broadcaster`): an id of this history resumes
exactly; nothing sent starts live without a gap; anything else the client sends, including
what the ``last_event_id`` dependency turns into ``None`` (too long, not UTF-8, NUL, CR, LF),
starts live after a gap event, reason ``epoch`` for another history's id and ``invalid``
otherwise. The headers are sent as raw bytes, as a server would pass them on.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import ASGIStream, BackendFactory
from litestar import Litestar, Request, get
from litestar.params import FromQuery

from litestar_sse import ServerSentEvent, SSEPlugin
from litestar_sse.broadcast import GAP_HEADER, RESUMED_FROM_HEADER, Broadcaster

pytestmark = pytest.mark.anyio


def make_app(broadcaster: Broadcaster) -> Litestar:
    @get("/events")
    async def events(
        request: Request[Any, Any, Any], topic: FromQuery[list[str]]
    ) -> ServerSentEvent:
        return await broadcaster.subscribe(topic, connection=request)

    return Litestar([events], plugins=[SSEPlugin()])


def open_stream(broadcaster: Broadcaster, header: bytes | None, query: str = "") -> ASGIStream:
    """``/events?topic=t`` with exactly this ``Last-Event-ID`` (``None``: no header)."""
    stream = ASGIStream(make_app(broadcaster), "/events", query="topic=t" + query)
    if header is not None:
        stream.scope["headers"] = [(b"last-event-id", header)]
    return stream


GARBAGE: dict[str, bytes] = {
    "1KiB-and-one": b"x" * 1025,
    "64KiB": b"x" * 65_536,
    "1MiB": b"1" * 1_048_576,
    "not-utf8": b"\xff\xfe",
    "truncated-utf8": b"\xc3",
    "encoded-surrogate": b"\xed\xa0\x80",
    "nul": b"a\x00b",
    "cr": b"a\rb",
    "control-characters": b"\x01\x02\x7f",
    "non-numeric": b"abc",
    "negative": b"-1",
    "uppercase-epoch": b"ABCDEF01-1",
}


@pytest.mark.parametrize("raw", list(GARBAGE.values()), ids=list(GARBAGE))
async def test_garbage_is_an_invalid_gap_then_live_events(
    make_backend: BackendFactory, raw: bytes
) -> None:
    async with Broadcaster(make_backend()) as broadcaster:
        head = await broadcaster.publish("t", "before")
        async with open_stream(broadcaster, raw) as stream:
            assert stream.status == 200
            assert stream.headers.get(GAP_HEADER.lower()) == "invalid"
            assert stream.headers.get(RESUMED_FROM_HEADER.lower()) == head
            (gap,) = await stream.wait_events(1)
            assert gap.event == "gap"
            assert gap.id == head  # so the next reconnect is an exact resume
            assert json.loads(gap.data)["reason"] == "invalid"
            live = await broadcaster.publish("t", "after")
            _, event = await stream.wait_events(2)
            assert (event.data, event.id) == ("after", live)


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("{epoch}-{far}", "invalid"),  # a position this history has not reached
        ("{epoch}-99999999999999999999999999999", "invalid"),
        ("{epoch}--1", "invalid"),
        ("{epoch}-abc", "invalid"),
        ("{epoch}-", "invalid"),
        ("{epoch}-{head} ", "invalid"),
        ("{epoch}", "invalid"),
        ("{other}-1", "epoch"),
        ("{other}-{far}", "epoch"),
    ],
)
async def test_ids_that_look_like_ours_but_point_nowhere(template: str, reason: str) -> None:
    async with Broadcaster() as broadcaster:
        head = await broadcaster.publish("t", "first")
        epoch, _, position = head.partition("-")
        other = "0" * 8 if epoch != "0" * 8 else "1" * 8
        value = template.format(epoch=epoch, other=other, head=position, far=int(position) + 1)
        async with open_stream(broadcaster, value.encode()) as stream:
            assert stream.status == 200
            assert stream.headers.get(GAP_HEADER.lower()) == reason
            (gap,) = await stream.wait_events(1)
            assert (gap.event, gap.id, json.loads(gap.data)["reason"]) == ("gap", head, reason)


async def test_nothing_sent_or_an_empty_header_starts_live_without_a_gap() -> None:
    async with Broadcaster() as broadcaster:
        for header in (None, b""):
            head = await broadcaster.publish("t", "before")
            async with open_stream(broadcaster, header) as stream:
                assert stream.status == 200
                assert GAP_HEADER.lower() not in stream.headers
                assert stream.headers.get(RESUMED_FROM_HEADER.lower()) == head
                live = await broadcaster.publish("t", "live")
                (event,) = await stream.wait_events(1)
                assert (event.data, event.id) == ("live", live)


async def test_garbage_query_parameter_is_a_gap_too() -> None:
    async with (
        Broadcaster() as broadcaster,
        open_stream(broadcaster, None, "&lastEventId=%FF%00") as stream,
    ):
        assert stream.status == 200
        assert stream.headers.get(GAP_HEADER.lower()) == "invalid"


async def test_an_exact_id_still_resumes_exactly() -> None:
    async with Broadcaster() as broadcaster:
        first = await broadcaster.publish("t", "seen")
        await broadcaster.publish("t", "missed")
        async with open_stream(broadcaster, first.encode()) as stream:
            assert GAP_HEADER.lower() not in stream.headers
            assert stream.headers.get(RESUMED_FROM_HEADER.lower()) == first
            (event,) = await stream.wait_events(1)
            assert event.data == "missed"
