"""The in-memory topic limit cannot be used by one client to evict another's topics: past it,
the principal holding the most topics gives up its own."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from conftest import ASGIStream
from litestar import Litestar, get, post
from litestar.params import FromPath

from litestar_sse import SSEConfig, SSEPlugin
from litestar_sse.broadcast import Broadcaster, BroadcastMessage, Gap, MemoryBackend, publishing_as
from litestar_sse.broadcast._backends.base import current_principal

pytestmark = pytest.mark.anyio


async def test_a_client_creating_many_topics_evicts_its_own_not_a_victims() -> None:
    backend = MemoryBackend(max_topics_retained=100)
    async with Broadcaster(backend) as broadcaster:
        with publishing_as("victim"):
            session = await broadcaster.publish("session:victim", "open")
            await broadcaster.publish("request:victim:1", "reply")
        with publishing_as("attacker"):
            for index in range(1000):
                await broadcaster.publish(f"session:attacker:{index}", "open")
        assert backend.topics_retained == 100
        history = [item async for item in broadcaster.history("session:victim")]
        assert history == [BroadcastMessage("session:victim", session, None, "open")]
        # the attacker's oldest went, its newest stay
        assert [item async for item in broadcaster.history("session:attacker:0")] == []
        assert len([item async for item in broadcaster.history("session:attacker:999")]) == 1
        # a third party with as few topics as the victim is safe too, the attacker gives way
        with publishing_as(("10.0.0.3", "x")):
            await broadcaster.publish("session:third", "open")
        assert backend.topics_retained == 100
        assert len([item async for item in broadcaster.history("session:victim")]) == 1


async def test_once_principals_hold_as_many_the_least_recently_published_goes() -> None:
    backend = MemoryBackend(max_topics_retained=3)
    async with Broadcaster(backend) as broadcaster:
        first = await broadcaster.publish("a", "1")  # no principal: None, like any other
        await broadcaster.publish("b", "1")
        await broadcaster.publish("c", "1")
        await broadcaster.publish("a", "2")  # published to recently: stays
        await broadcaster.publish("d", "1")
        assert [item async for item in broadcaster.history("b", after=first)] == [
            Gap("retention", ("b",))
        ]
        assert len([item async for item in broadcaster.history("a")]) == 2
        # idle expiry and the byte limit forget topics too, and keep the counts right
        for index in range(50):
            with publishing_as(index % 4):
                await broadcaster.publish(f"t{index}", "x")
        assert backend.topics_retained == 3


def test_the_principal_is_none_outside_any_block_and_a_failing_key_is_none() -> None:
    assert current_principal() is None
    with publishing_as("a"):
        assert current_principal() == "a"
        with publishing_as(lambda: 1 / 0):
            assert current_principal() is None
        assert current_principal() == "a"
    assert current_principal() is None


async def test_over_http_each_client_address_is_a_principal_by_default() -> None:
    # 10,000 unauthenticated sessions opened against examples/mcp_server.py made the
    # victim's next request a 404: its session topic was the least recently published.
    broadcaster = Broadcaster(MemoryBackend(max_topics_retained=50))

    @post("/sessions/{name:str}", status_code=200)
    async def open_session(name: FromPath[str]) -> dict[str, str]:
        async def later() -> str:  # a task started by the request publishes as it too
            return await broadcaster.publish(f"job:{name}", "started")

        await asyncio.create_task(later())
        return {"id": await broadcaster.publish(f"session:{name}", "open")}

    @get("/sessions/{name:str}")
    async def find_session(name: FromPath[str]) -> dict[str, Any]:
        found = [item async for item in broadcaster.history(f"session:{name}")]
        return {"found": len(found)}

    app = Litestar(
        [open_session, find_session],
        plugins=[SSEPlugin(SSEConfig(broadcaster=broadcaster))],
    )

    async def call(method: str, path: str, address: str) -> Any:
        stream = ASGIStream(app, path, method=method)
        stream.scope["client"] = (address, 40000)
        async with stream:
            await stream.wait_for(lambda: stream.ended)
        assert stream.status in (200, 201), stream.messages
        return json.loads(b"".join(stream.body_sends))

    async with broadcaster:
        await call("POST", "/sessions/victim", "192.0.2.1")
        for index in range(200):
            await call("POST", f"/sessions/attacker-{index}", "198.51.100.7")
        assert await call("GET", "/sessions/victim", "192.0.2.1") == {"found": 1}
        assert await call("GET", "/sessions/attacker-0", "198.51.100.7") == {"found": 0}
        assert await call("GET", "/sessions/attacker-199", "198.51.100.7") == {"found": 1}


async def test_a_request_publishes_as_its_client_and_leaves_the_callers_principal_as_it_was() -> (
    None
):
    broadcaster = Broadcaster(MemoryBackend())
    seen: list[Any] = []

    @get("/whoami", sync_to_thread=False)
    def whoami() -> dict[str, str]:
        seen.append(current_principal())
        return {}

    app = Litestar([whoami], plugins=[SSEPlugin(SSEConfig(broadcaster=broadcaster))])
    async with broadcaster:
        with publishing_as("the caller"):
            stream = ASGIStream(app, "/whoami", method="GET")
            stream.scope["client"] = ("192.0.2.1", 40000)
            # The app awaited in this very task, as a test harness or an embedding app may.
            await app(stream.scope, stream._receive, stream._send)  # type: ignore[arg-type]
            assert current_principal() == "the caller"
    assert seen == ["192.0.2.1"]
