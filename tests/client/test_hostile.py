"""Servers that try to make the client hold unbounded memory or reconnect in a tight loop."""

from __future__ import annotations

import asyncio
import time

import pytest

from litestar_sse.client import EventSource, EventSourceError
from tests.client.wire import Seen, head, serving, write

pytestmark = pytest.mark.anyio


async def drain(source: EventSource[str]) -> None:
    async with source:
        async for _ in source:
            pass


async def test_an_endless_line_is_a_clear_error_within_the_line_limit() -> None:
    sent = 0

    async def answer(seen: Seen, index: int, writer: asyncio.StreamWriter) -> None:
        nonlocal sent
        await write(writer, head() + b"data: ")
        while sent < 50_000_000:  # never a line break
            await write(writer, b"x" * 65536)
            sent += 65536

    async with (
        serving(answer) as server,
        EventSource(server.url, max_line_length=100_000, retry=0.01, min_delay=0.01) as source,
    ):
        with pytest.raises(EventSourceError, match="max_line_length"):
            async for _ in source:
                pass
    # The client stopped reading and closed soon after the limit (what was sent beyond it sat
    # in the kernel's socket buffers).
    assert sent < 20_000_000
    assert len(server.requests) == 1  # not retried: the server would send the same


async def test_a_never_ending_event_is_a_clear_error_within_the_event_limit() -> None:
    sent = 0

    async def answer(seen: Seen, index: int, writer: asyncio.StreamWriter) -> None:
        nonlocal sent
        await write(writer, head())
        while sent < 50_000_000:  # data lines, never the blank line
            await write(writer, b"data: " + b"y" * 1000 + b"\n")
            sent += 1007

    async with (
        serving(answer) as server,
        EventSource(server.url, max_event_length=200_000, retry=0.01, min_delay=0.01) as source,
    ):
        with pytest.raises(EventSourceError, match="max_event_length"):
            async for _ in source:
                pass
    assert sent < 20_000_000
    assert len(server.requests) == 1


async def test_a_flood_of_retry_0_cannot_push_the_reconnect_rate_above_min_delay() -> None:
    async def answer(seen: Seen, index: int, writer: asyncio.StreamWriter) -> None:
        await write(writer, head() + b"retry: 0\ndata: again\n\n")

    async with serving(answer) as server, EventSource(server.url, min_delay=0.1) as source:
        started = time.monotonic()
        async for _ in source:
            if time.monotonic() - started > 1.0:
                break
    assert 5 <= len(server.requests) <= 12
    assert min(server.intervals()) >= 0.095


async def test_a_redirect_loop_is_a_clear_error() -> None:
    async def answer(seen: Seen, index: int, writer: asyncio.StreamWriter) -> None:
        await write(writer, head(302, "Location: /loop", "Content-Type: text/plain"))

    async with serving(answer) as server:
        source = EventSource(server.url + "/loop", retry=0.01)
        with pytest.raises(EventSourceError, match="redirect loop"):
            await drain(source)
    assert len(server.requests) == 21  # httpx's max_redirects (20) + the first, then no retry


async def test_an_unfollowed_redirect_names_the_fix() -> None:
    async def answer(seen: Seen, index: int, writer: asyncio.StreamWriter) -> None:
        await write(writer, head(307, "Location: /elsewhere", "Content-Type: text/plain"))

    async with serving(answer) as server:
        source = EventSource(server.url, follow_redirects=False)
        with pytest.raises(EventSourceError, match="follow_redirects=True"):
            await drain(source)
