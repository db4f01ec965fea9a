"""Our server (uvicorn, memory and Redis backends) through a proxy that cuts connections at
random byte counts: the client yields every event exactly once, in order, and is never told
of a gap that did not happen."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest

from litestar_sse.client import EventSource, Gap
from tests.client.cutting_proxy import CuttingProxy
from tests.client.feed_app import payload
from tests.e2e.live_server import Server, live_server

TOTAL = 600


@pytest.fixture(params=["memory", "redis"])
def feed_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    env = {}
    if request.param == "redis":
        env["FEED_REDIS"] = request.getfixturevalue("redis_server").url
    with live_server("tests.client.feed_app:app", tmp_path, env=env) as server:
        yield server


@pytest.mark.anyio
async def test_every_event_exactly_once_in_order_over_a_hundred_cuts(feed_server: Server) -> None:
    # Half published before the client connects (read as replays after event 0, whose id
    # the client starts from), half while it reads (live).
    async with httpx.AsyncClient() as client:
        first = await client.post(
            f"{feed_server.url}/publish", params={"count": TOTAL // 2, "pause": 0}
        )
    await anyio.to_thread.run_sync(
        feed_server.wait_for_state, "count", lambda state: state["count"] >= TOTAL // 2
    )
    numbers: list[int] = []
    async with (
        CuttingProxy(feed_server.port, 150, 1500, seed=7) as proxy,
        EventSource(
            proxy.url + "/feed",
            last_event_id=first.json()["id"],
            retry=0.01,
            min_delay=0.005,
            max_delay=0.05,
        ) as source,
    ):
        async with httpx.AsyncClient() as client:
            await client.post(
                f"{feed_server.url}/publish", params={"count": TOTAL // 2, "pause": 0.001}
            )
        async for item in source:
            assert not isinstance(item, Gap), item
            number = int(item.data.partition("|")[0])
            assert item.data == payload(number)
            assert item.event == ("tick" if number % 3 else "message")
            numbers.append(number)
            if len(numbers) == TOTAL - 1:
                break
    assert numbers == list(range(1, TOTAL))
    assert proxy.cuts >= 100, proxy.cuts
