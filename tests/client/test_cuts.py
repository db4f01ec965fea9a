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

TOTAL = 400


@pytest.fixture(params=["memory", "redis"])
def feed_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    env = {}
    if request.param == "redis":
        env["FEED_REDIS"] = request.getfixturevalue("redis_server").url
    with live_server("tests.client.feed_app:app", tmp_path, env=env) as server:
        yield server


async def read_through_cuts(
    server: Server, total: int, low: int, high: int, seed: int
) -> CuttingProxy:
    """Publish ``total`` events, half before the client connects (read as replays after event
    0, whose id the client starts from), half while it reads (live), and read them through a
    proxy cutting every connection after ``low`` to ``high`` bytes: each exactly once, in
    order, and no gap. Returns the proxy (its count of cuts)."""
    async with httpx.AsyncClient() as client:
        first = await client.post(f"{server.url}/publish", params={"count": total // 2, "pause": 0})
    before = first.json()["number"]
    await anyio.to_thread.run_sync(
        server.wait_for_state, "count", lambda state: state["count"] >= before + total // 2
    )
    numbers: list[int] = []
    async with (
        CuttingProxy(server.port, low, high, seed=seed) as proxy,
        EventSource(
            proxy.url + "/feed",
            last_event_id=first.json()["id"],
            retry=0.01,
            min_delay=0.005,
            max_delay=0.05,
        ) as source,
    ):
        async with httpx.AsyncClient() as client:
            await client.post(f"{server.url}/publish", params={"count": total // 2, "pause": 0.001})
        async for item in source:
            assert not isinstance(item, Gap), item
            number = int(item.data.partition("|")[0])
            assert item.data == payload(number)
            assert item.event == ("tick" if number % 3 else "message")
            numbers.append(number)
            if len(numbers) == total - 1:
                break
    assert numbers == list(range(before + 1, before + total))
    return proxy


@pytest.mark.anyio
async def test_every_event_exactly_once_in_order_over_a_hundred_cuts(feed_server: Server) -> None:
    proxy = await read_through_cuts(feed_server, TOTAL, 150, 1500, seed=7)
    assert proxy.cuts >= 100, proxy.cuts
