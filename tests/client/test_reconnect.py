"""EventSource against a scripted server: reconnects, resumes, stops and retries as a browser
does, asserted on the requests the server received."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from litestar_sse.client import Event, EventSource, EventSourceError, Gap, ResponseError
from tests.client.wire import Seen, chunk, forever, head, serving, write

pytestmark = pytest.mark.anyio


async def collect(source: EventSource[Any], limit: int = 100) -> list[Any]:
    items = []
    async with source:
        async for item in source:
            items.append(item)
            if len(items) >= limit:
                break
    return items


def datas(items: list[Any]) -> list[str]:
    return [item.data for item in items if isinstance(item, Event)]


async def test_reconnects_after_the_end_with_last_event_id_after_the_server_retry() -> None:
    async def answer(seen: Seen, index: int, writer: asyncio.StreamWriter) -> None:
        if index == 0:
            await write(writer, head() + b"retry: 300\nid: 1\ndata: a\n\nid: 2\ndata: b\n\n")
        elif index == 1:
            await write(writer, head() + b"data: c\n\n")
        else:
            await write(writer, head(204))

    async with serving(answer) as server:
        items = await collect(EventSource(server.url + "/s", retry=5.0))
    assert datas(items) == ["a", "b", "c"]
    assert [seen.headers.get("last-event-id") for seen in server.requests] == [None, "2", "2"]
    assert server.requests[0].headers["accept"] == "text/event-stream"
    # The server's retry (300 ms), not the 5 s default; 204 ends the source.
    assert all(0.28 <= interval < 1.5 for interval in server.intervals()), server.intervals()


async def test_an_event_cut_before_its_blank_line_is_neither_yielded_nor_resumed_from() -> None:
    async def answer(seen: Seen, index: int, writer: asyncio.StreamWriter) -> None:
        if index == 0:
            await write(writer, head(chunked=True) + chunk(b"id: 1\ndata: a\n\nid: 2\ndata: b\n"))
            # Closed mid-body: the chunked body never ends.
        else:
            await write(writer, head(204))

    async with serving(answer) as server:
        items = await collect(EventSource(server.url, retry=0.05, min_delay=0.01))
    assert datas(items) == ["a"]
    assert server.requests[1].headers["last-event-id"] == "1"


async def test_last_event_id_given_is_sent_on_the_first_request() -> None:
    async def answer(seen: Seen, index: int, writer: asyncio.StreamWriter) -> None:
        await write(writer, head(204))

    async with serving(answer) as server:
        assert await collect(EventSource(server.url, last_event_id="41")) == []
    assert server.requests[0].headers["last-event-id"] == "41"
    with pytest.raises(ValueError, match="last_event_id"):
        EventSource("http://x", last_event_id="a\nb")


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410])
async def test_a_4xx_ends_the_source_without_another_attempt(status: int) -> None:
    async def answer(seen: Seen, index: int, writer: asyncio.StreamWriter) -> None:
        await write(writer, head(status, "Content-Type: text/plain") + b"no")

    async with serving(answer) as server:
        with pytest.raises(ResponseError, match=str(status)) as caught:
            await collect(EventSource(server.url, retry=0.01, min_delay=0.01))
        await asyncio.sleep(0.1)
    assert caught.value.status_code == status
    assert len(server.requests) == 1


async def test_5xx_408_429_are_retried_honouring_retry_after() -> None:
    answers = [
        head(503, "Retry-After: 1", "Content-Type: text/plain"),
        head(429, "Content-Type: text/plain"),
        head(408, "Content-Type: text/plain"),
        head() + b"data: ok\n\n",
        head(204),
    ]

    async def answer(seen: Seen, index: int, writer: asyncio.StreamWriter) -> None:
        await write(writer, answers[index])

    async with serving(answer) as server:
        items = await collect(EventSource(server.url, retry=0.05, min_delay=0.01))
    assert datas(items) == ["ok"]
    assert len(server.requests) == 5
    first, *rest = server.intervals()
    assert first >= 0.95  # Retry-After: 1, far above retry
    assert all(interval < 1.0 for interval in rest)


async def test_repeated_failures_back_off_exponentially_and_max_attempts_gives_up() -> None:
    async def answer(seen: Seen, index: int, writer: asyncio.StreamWriter) -> None:
        await write(writer, head(503, "Content-Type: text/plain"))

    async with serving(answer) as server:
        with pytest.raises(EventSourceError, match="4 failed attempts"):
            await collect(EventSource(server.url, retry=0.1, min_delay=0.01, max_attempts=4))
    assert len(server.requests) == 4
    one, two, three = server.intervals()
    assert 0.09 <= one < 0.6  # the plain retry after the first failure
    assert two >= 0.1
    assert three >= 0.2


async def test_a_content_type_other_than_event_stream_is_an_error() -> None:
    async def answer(seen: Seen, index: int, writer: asyncio.StreamWriter) -> None:
        await write(writer, head(200, "Content-Type: text/html") + b"data: x\n\n")

    async with serving(answer) as server:
        with pytest.raises(ResponseError, match="text/html"):
            await collect(EventSource(server.url, retry=0.01, min_delay=0.01))
    assert len(server.requests) == 1


async def test_no_byte_for_idle_timeout_reconnects() -> None:
    async def answer(seen: Seen, index: int, writer: asyncio.StreamWriter) -> None:
        if index == 0:
            await write(writer, head() + b"id: 7\ndata: a\n\n: ping\n\n")
            await forever()  # a dead peer: the connection stays, nothing comes
        elif index == 1:
            await write(writer, head() + b"data: b\n\n")
        else:
            await write(writer, head(204))

    async with serving(answer) as server:
        started = time.monotonic()
        items = await collect(EventSource(server.url, idle_timeout=0.4, retry=0.05, min_delay=0.01))
        took = time.monotonic() - started
    assert datas(items) == ["a", "b"]
    assert server.requests[1].headers["last-event-id"] == "7"
    assert 0.4 <= server.intervals()[0] < 2.0
    assert took < 5


async def test_gap_header_and_gap_event_are_one_gap_where_events_were_lost() -> None:
    body = (
        b"id: e-1\ndata: replayed\n\n"
        b'event: gap\nid: e-5\ndata: {"reason":"retention","topics":["feed"]}\n\n'
        b"id: e-6\ndata: live\n\n"
    )

    async def answer(seen: Seen, index: int, writer: asyncio.StreamWriter) -> None:
        if index == 0:
            gap = ("SSE-Gap: retention", "SSE-Resumed-From: e-0")
            await write(writer, head(200, *gap) + body)
        else:
            await write(writer, head(204))

    async with serving(answer) as server:
        source = EventSource(server.url, retry=0.01, min_delay=0.01)
        items = await collect(source)
    assert source.resumed_from == "e-0"
    assert [type(item).__name__ for item in items] == ["Event", "Gap", "Event"]
    gap = items[1]
    assert isinstance(gap, Gap)
    assert (gap.reason, gap.id, gap.topics, gap.source) == ("retention", "e-5", ("feed",), "event")
    assert server.requests[1].headers["last-event-id"] == "e-6"


async def test_a_gap_header_whose_event_never_came_is_told_when_the_connection_ends() -> None:
    async def answer(seen: Seen, index: int, writer: asyncio.StreamWriter) -> None:
        if index == 0:
            await write(writer, head(200, "SSE-Gap: epoch") + b"id: n-1\ndata: a\n\n")
        else:
            await write(writer, head(204))

    async with serving(answer) as server:
        items = await collect(EventSource(server.url, retry=0.01, min_delay=0.01))
    assert datas(items) == ["a"]
    assert items[1] == Gap("epoch", "n-1", source="header")


async def test_gaps_raise_raises_and_the_source_reads_on() -> None:
    from litestar_sse.client import GapError

    async def answer(seen: Seen, index: int, writer: asyncio.StreamWriter) -> None:
        if index == 0:
            gap = b'event: gap\nid: 9\ndata: {"reason":"overflow"}\n\n'
            await write(writer, head() + gap + b"data: after\n\n")
        else:
            await write(writer, head(204))

    async with (
        serving(answer) as server,
        EventSource(server.url, gaps="raise", retry=0.01, min_delay=0.01) as source,
    ):
        with pytest.raises(GapError, match="overflow") as caught:
            async for _ in source:
                pass
        assert caught.value.gap.id == "9"
        assert [event.data async for event in source] == ["after"]  # type: ignore[union-attr]


async def test_a_post_is_not_sent_again_unless_asked() -> None:
    async def answer(seen: Seen, index: int, writer: asyncio.StreamWriter) -> None:
        if index == 0 or seen.headers.get("last-event-id") is None:
            await write(writer, head(chunked=True) + chunk(b"id: 1\ndata: token\n\n"))
        else:
            await write(writer, head(204))

    async with serving(answer) as server:
        source = EventSource(server.url, method="POST", json={"prompt": "hi"}, retry=0.01)
        with pytest.raises(EventSourceError, match="reconnect=True"):
            await collect(source)
        await asyncio.sleep(0.1)
        assert len(server.requests) == 1
        assert server.requests[0].body == b'{"prompt":"hi"}'

        server.requests.clear()
        source = EventSource(
            server.url, method="POST", json={"prompt": "hi"}, reconnect=True, retry=0.01
        )
        assert datas(await collect(source)) == ["token"]
        assert [seen.body for seen in server.requests] == [b'{"prompt":"hi"}'] * 2
        assert server.requests[1].headers["last-event-id"] == "1"


async def test_a_post_stream_that_ends_ends_the_iteration() -> None:
    async def answer(seen: Seen, index: int, writer: asyncio.StreamWriter) -> None:
        await write(writer, head() + b"data: one\n\ndata: [DONE]\n\n")

    async with serving(answer) as server:
        items = await collect(EventSource(server.url, method="POST", content=b"{}"))
    assert datas(items) == ["one", "[DONE]"]
    assert len(server.requests) == 1


async def test_an_existing_client_headers_and_auth_are_used() -> None:
    async def answer(seen: Seen, index: int, writer: asyncio.StreamWriter) -> None:
        await write(writer, head() + b"data: x\n\n")

    async with serving(answer) as server, httpx.AsyncClient(base_url=server.url) as client:
        source = EventSource(
            "/feed", client=client, headers={"X-Room": "7"}, auth=("u", "p"), method="POST"
        )
        assert datas(await collect(source)) == ["x"]
        assert not client.is_closed  # the caller's client is the caller's to close
    seen = server.requests[0]
    assert (seen.path, seen.headers["x-room"]) == ("/feed", "7")
    assert seen.headers["authorization"].startswith("Basic ")


async def test_bad_settings_fail_at_construction_naming_the_fix() -> None:
    with pytest.raises(ValueError, match="retry"):
        EventSource("http://x", retry=-1)
    with pytest.raises(ValueError, match="max_delay"):
        EventSource("http://x", min_delay=5, max_delay=1)
    with pytest.raises(ValueError, match="idle_timeout"):
        EventSource("http://x", idle_timeout=0)
    with pytest.raises(ValueError, match="gaps"):
        EventSource("http://x", gaps="ignore")  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="content must be bytes"):
        EventSource("http://x", content=iter([b"a"]))  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="AsyncClient"):
        EventSource("http://x", client=httpx.Client())  # type: ignore[call-overload]


async def test_a_drop_after_events_is_not_a_failed_attempt() -> None:
    # max_attempts counts failures in a row: a stream that delivered events and then ended
    # resets the count, so a long-lived feed is never given up on for its normal ends.
    async def answer(seen: Seen, index: int, writer: asyncio.StreamWriter) -> None:
        if index < 3:
            await write(writer, head() + f"id: {index}\ndata: {index}\n\n".encode())
        else:
            await write(writer, head(204))

    async with serving(answer) as server:
        source = EventSource(server.url, retry=0.01, min_delay=0.01, max_attempts=1)
        assert datas(await collect(source)) == ["0", "1", "2"]
    assert len(server.requests) == 4
