"""The broadcast apps of the fan-out scenario: one topic, N subscribed event streams.

Each :class:`Hub` is a whole ASGI app (``GET /events`` subscribes to the one topic) plus the
way to publish to that topic from the same process:

``raw``
    The floor: a hand-written ASGI app with the least a Python fan-out can do. One shared list
    of pre-formatted events, one future per idle subscriber, woken on publish; a woken
    subscriber sends everything new in one ``http.response.body``. No ids, no history, no
    slow-subscriber policy, no pings, no framework.
``litestar_sse``
    ``litestar_sse.broadcast.Broadcaster`` (in-memory backend) given to ``SSEPlugin`` in a
    Litestar app; the handler returns ``await broadcaster.subscribe(...)``. Pings every 15 s
    (none fires during a run), ids, history and the slow-subscriber policy are on, as in
    production.
``litestar_sse hub``
    The same ``Broadcaster`` behind a bare ASGI app (no Litestar, no send loop): each request
    sends the chunks of ``subscription.wire_chunks()``. Not a scenario row: it tells the hub's
    own cost per delivery from the framework's (``--hub "litestar_sse hub"``).
``litestar channels``
    Litestar 2.25's own ``ChannelsPlugin`` (memory backend) feeding Litestar's
    ``ServerSentEvent``: what a Litestar app without this package would write. Its publish is
    queued to a worker task that hands each event to every subscriber's queue; each event is
    then one ASGI send per subscriber.
"""

# No ``from __future__ import annotations``: Litestar resolves the handlers' annotations, which
# name classes imported inside the builders.
import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

from benchmarks.apps import ASGIApp, Message, Receive, Scope, Send
from benchmarks.asgi_harness import get_scope

TOPIC = "bench"
PATH = "/events"
PING = 15.0
# Far above any backlog of a run: a measurement must never disconnect a slow subscriber.
MAX_QUEUE = 100_000
HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
]


class Hub:
    """One broadcast implementation: its ASGI app, how to publish, how many subscribed."""

    name = ""
    app: ASGIApp
    # False when the app never reads ``receive`` again: its streams are cancelled at the end.
    listens_for_disconnect = True

    async def publish(self, data: str) -> None:
        raise NotImplementedError

    def subscribers(self) -> int:
        raise NotImplementedError


class RawHub(Hub):
    name = "raw"
    listens_for_disconnect = False

    def __init__(self) -> None:
        self.events: list[bytes] = []
        self.waiters: list[asyncio.Future[None]] = []
        self.count = 0
        self.app = self._app

    async def publish(self, data: str) -> None:
        self.events.append(b"data: " + data.encode() + b"\r\n\r\n")
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def subscribers(self) -> int:
        return self.count

    async def _app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                kind = message["type"]
                await send({"type": kind + ".complete"})
                if kind == "lifespan.shutdown":
                    return
        await receive()  # the request
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        loop = asyncio.get_running_loop()
        events = self.events
        cursor = len(events)
        self.count += 1
        try:
            while True:
                if cursor < len(events):
                    body = b"".join(events[cursor:])
                    cursor = len(events)
                    await send({"type": "http.response.body", "body": body, "more_body": True})
                else:
                    waiter = loop.create_future()
                    self.waiters.append(waiter)
                    await waiter
        finally:
            self.count -= 1


class LitestarSSEHub(Hub):
    name = "litestar_sse"

    def __init__(self) -> None:
        from litestar import Litestar, Request, get

        from litestar_sse import ServerSentEvent, SSEConfig, SSEPlugin
        from litestar_sse.broadcast import Broadcaster, MemoryBackend, Retention

        broadcaster = Broadcaster(
            MemoryBackend(retention=Retention(max_events=100)), max_queue=MAX_QUEUE
        )
        self.broadcaster = broadcaster

        @get(PATH)
        async def events(request: Request[Any, Any, Any]) -> ServerSentEvent:
            return await broadcaster.subscribe(TOPIC, connection=request)

        config = SSEConfig(broadcaster=broadcaster, ping_interval=PING)
        app = Litestar([events], plugins=[SSEPlugin(config)], openapi_config=None)
        self.app = cast(ASGIApp, app)

    async def publish(self, data: str) -> None:
        await self.broadcaster.publish(TOPIC, data)

    def subscribers(self) -> int:
        return self.broadcaster.stats().subscribers.get(TOPIC, 0)


class BareHub(Hub):
    name = "litestar_sse hub"
    listens_for_disconnect = False

    def __init__(self) -> None:
        from litestar_sse.broadcast import Broadcaster, MemoryBackend, Retention

        self.broadcaster = Broadcaster(
            MemoryBackend(retention=Retention(max_events=100)), max_queue=MAX_QUEUE
        )
        self.app = self._app

    async def publish(self, data: str) -> None:
        await self.broadcaster.publish(TOPIC, data)

    def subscribers(self) -> int:
        return self.broadcaster.stats().subscribers.get(TOPIC, 0)

    async def _app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                kind = (await receive())["type"]
                if kind == "lifespan.startup":
                    await self.broadcaster.start()
                elif kind == "lifespan.shutdown":
                    await self.broadcaster.close()
                await send({"type": kind + ".complete"})
                if kind == "lifespan.shutdown":
                    return
        await receive()  # the request
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        subscription = await self.broadcaster.open_subscription(TOPIC)
        async for chunk in subscription.wire_chunks():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})


class ChannelsHub(Hub):
    name = "litestar channels"

    def __init__(self) -> None:
        from litestar import Litestar, get
        from litestar.channels import ChannelsPlugin
        from litestar.channels.backends.memory import MemoryChannelsBackend
        from litestar.response import ServerSentEvent

        channels = ChannelsPlugin(MemoryChannelsBackend(), channels=[TOPIC])
        self.channels = channels

        @get(PATH)
        async def events() -> ServerSentEvent:
            return await channel_stream(channels, TOPIC)

        app = Litestar([events], plugins=[channels], openapi_config=None)
        self.app = cast(ASGIApp, app)

    async def publish(self, data: str) -> None:
        self.channels.publish(data.encode(), TOPIC)

    def subscribers(self) -> int:
        return len(self.channels._channels.get(TOPIC, ()))


async def channel_stream(channels: Any, topic: str) -> Any:
    """What a Litestar user writes to stream a channel of the ``ChannelsPlugin``: Litestar's
    own ``ServerSentEvent`` over the subscriber's events, unsubscribed when the stream ends."""
    from litestar.response import ServerSentEvent

    subscriber = await channels.subscribe([topic])

    async def items() -> AsyncIterator[bytes]:
        try:
            async for item in subscriber.iter_events():
                yield item
        finally:
            await channels.unsubscribe(subscriber)

    return ServerSentEvent(items())


HUBS: dict[str, type[Hub]] = {
    RawHub.name: RawHub,
    LitestarSSEHub.name: LitestarSSEHub,
    BareHub.name: BareHub,
    ChannelsHub.name: ChannelsHub,
}


def http_scope() -> dict[str, Any]:
    """The scope of ``GET /events``."""
    return get_scope(PATH)


__all__ = ["HUBS", "PATH", "TOPIC", "Hub", "Message", "channel_stream", "http_scope"]
