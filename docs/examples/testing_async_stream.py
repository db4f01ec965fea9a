"""The same with AsyncTestClient and async_sse_stream, in an async test."""

import pytest
from litestar.testing import AsyncTestClient
from testing_app import create_app

from litestar_sse.testing import async_sse_stream


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the app sleeps with asyncio; with anyio.sleep it would run on trio too


@pytest.mark.anyio
async def test_ticks_async() -> None:
    async with (
        AsyncTestClient(create_app()) as client,
        async_sse_stream(client, "GET", "/ticks", last_event_id="9") as stream,
    ):
        received = []
        async for event in stream:
            received.append(event.data)
            if len(received) == 2:
                break  # an endless stream: stop when you have seen enough
    assert received == ["tick 10", "tick 11"]
