"""The apps of the scale scenario: one topic on one Redis, served by several worker processes.

Every app serves ``GET /events`` (one subscription to the topic ``t``) and reads the events a
separate publisher process writes to Redis; :func:`build` makes one by name, and
:func:`publisher` gives the matching way to publish from another process.

``raw``
    The floor: a hand-written ASGI app. Each worker runs one ``XREAD BLOCK`` loop on a plain
    Redis stream and writes every event (``id:`` and ``data:``) to all its connections from
    that loop, one ``http.response.body`` per connection: no task, queue or future per
    subscriber. A ping task writes ``: ping`` to every connection nothing was written to for
    the ping interval (the same rule as litestar_sse's, at a 50 ms tick).
``litestar_sse``
    ``SSEPlugin`` with a ``Broadcaster(RedisStreamBackend(...))``, everything at its defaults
    (pings every 15 s, retention 1,000 events, send timeout, slow-subscriber policy); the
    handler returns ``await broadcaster.subscribe("t", connection=request)``.
``litestar channels``
    Litestar 2.25's ``ChannelsPlugin`` on ``RedisChannelsStreamBackend`` (Redis Streams with a
    history of 1,000, the backend closest to ours) feeding Litestar's own ``ServerSentEvent``.
    Litestar 2.25 has no keep-alive pings.
"""

# No ``from __future__ import annotations``: Litestar resolves the handlers' annotations, which
# name classes imported inside the builders.
import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

from benchmarks.apps import ASGIApp, Message, Receive, Scope, Send
from benchmarks.fanout_apps import channel_stream

TOPIC = "t"
PATH = "/events"
# litestar_sse's default ping interval; the raw floor pings on the same rule.
PING = 15.0
HISTORY = 1000  # litestar_sse's default retention, given to the others for the same Redis work
RAW_TICK = 0.05
HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
]
IMPLS = ("raw", "litestar_sse", "litestar channels")

Publish = Callable[[str], Awaitable[None]]


def raw_key(prefix: str) -> str:
    return f"{prefix}{TOPIC}"


class RawFanout:
    """The floor (see the module docstring): an ASGI app, one reader and one pinger per
    process, connections kept in a dict ordered by their last own write."""

    def __init__(self, url: str, prefix: str, ping: float = PING) -> None:
        self.url = url
        self.key = raw_key(prefix)
        self.ping = ping
        # send -> loop time of the last write made to that connection alone (headers, ping);
        # insertion order is that time's order, so the pinger stops at the first one not due.
        self.sends: dict[Send, float] = {}
        self.last_event = 0.0  # loop time of the last event written to every connection
        self.tasks: list[asyncio.Task[None]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        self.sends[send] = asyncio.get_running_loop().time()
        try:
            while (await receive())["type"] != "http.disconnect":
                pass
        finally:
            self.sends.pop(send, None)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            kind = message["type"]
            if kind == "lifespan.startup":
                self.tasks = [asyncio.create_task(self._read()), asyncio.create_task(self._pings())]
            elif kind == "lifespan.shutdown":
                for task in self.tasks:
                    task.cancel()
            await send({"type": kind + ".complete"})
            if kind == "lifespan.shutdown":
                return

    async def _read(self) -> None:
        from redis.asyncio import Redis

        client = Redis.from_url(self.url)
        newest: Any = await client.xrevrange(self.key, count=1)
        last: bytes = newest[0][0] if newest else b"0-0"
        loop = asyncio.get_running_loop()
        while True:
            reply: Any = await client.xread({self.key: last}, block=2000, count=1000)
            if not reply:
                continue
            chunks = []
            for entry_id, fields in reply[0][1]:
                last = entry_id
                chunks.append(b"id: %b\r\ndata: %b\r\n\r\n" % (entry_id, fields[b"d"]))
            message: Message = {"type": "http.response.body", "body": b"".join(chunks)}
            message["more_body"] = True
            self.last_event = loop.time()
            for send in list(self.sends):
                await send(message)

    async def _pings(self) -> None:
        loop = asyncio.get_running_loop()
        message: Message = {"type": "http.response.body", "body": b": ping\r\n\r\n"}
        message["more_body"] = True
        while True:
            await asyncio.sleep(RAW_TICK)
            now = loop.time()
            if now - self.last_event < self.ping:
                continue
            due = []
            for send, own in self.sends.items():
                if now - max(own, self.last_event) < self.ping:
                    break
                due.append(send)
            for send in due:
                # Moved to the end: the dict stays ordered by the last own write.
                del self.sends[send]
                self.sends[send] = now
                await send(message)


def litestar_sse_app(url: str, prefix: str) -> ASGIApp:
    from litestar import Litestar, Request, get
    from litestar.di import NamedDependency

    from litestar_sse import ServerSentEvent, SSEConfig, SSEPlugin
    from litestar_sse.broadcast import Broadcaster, RedisStreamBackend

    @get(PATH)
    async def events(
        request: Request[Any, Any, Any], broadcaster: NamedDependency[Broadcaster]
    ) -> ServerSentEvent:
        return await broadcaster.subscribe(TOPIC, connection=request)

    config = SSEConfig(broadcaster=Broadcaster(RedisStreamBackend(url, prefix=prefix)))
    return cast(ASGIApp, Litestar([events], plugins=[SSEPlugin(config)], openapi_config=None))


def _channels_backend(url: str, prefix: str) -> Any:
    from litestar.channels.backends.redis import RedisChannelsStreamBackend
    from redis.asyncio import Redis

    return RedisChannelsStreamBackend(HISTORY, redis=Redis.from_url(url), key_prefix=prefix)


def channels_app(url: str, prefix: str) -> ASGIApp:
    from litestar import Litestar, get
    from litestar.channels import ChannelsPlugin
    from litestar.response import ServerSentEvent

    @get(PATH)
    async def events(channels: ChannelsPlugin) -> ServerSentEvent:
        return await channel_stream(channels, TOPIC)

    plugin = ChannelsPlugin(backend=_channels_backend(url, prefix), channels=[TOPIC])
    return cast(ASGIApp, Litestar([events], plugins=[plugin], openapi_config=None))


def build(impl: str, url: str, prefix: str) -> ASGIApp:
    """The app of ``impl`` (one of :data:`IMPLS`) on the Redis at ``url``, keys under ``prefix``."""
    if impl == "raw":
        return RawFanout(url, prefix)
    if impl == "litestar_sse":
        return litestar_sse_app(url, prefix)
    if impl == "litestar channels":
        return channels_app(url, prefix)
    raise ValueError(f"unknown implementation {impl!r}; pick one of {IMPLS}")


@contextlib.asynccontextmanager
async def publisher(impl: str, url: str, prefix: str) -> AsyncIterator[Publish]:
    """How the publisher process writes one event's data to Redis for ``impl``'s app."""
    if impl == "litestar_sse":
        from litestar_sse.broadcast import Broadcaster, RedisStreamBackend

        async with Broadcaster(RedisStreamBackend(url, prefix=prefix)) as broadcaster:

            async def publish_ours(data: str) -> None:
                await broadcaster.publish(TOPIC, data)

            yield publish_ours
        return
    from redis.asyncio import Redis

    if impl == "raw":
        client = Redis.from_url(url)
        key = raw_key(prefix)

        async def publish_raw(data: str) -> None:
            await client.xadd(key, {"d": data}, maxlen=HISTORY, approximate=True)

        try:
            yield publish_raw
        finally:
            await client.aclose()
        return
    if impl == "litestar channels":
        backend = _channels_backend(url, prefix)

        async def publish_channels(data: str) -> None:
            await backend.publish(data.encode(), [TOPIC])

        try:
            yield publish_channels
        finally:
            await backend._redis.aclose()
        return
    raise ValueError(f"unknown implementation {impl!r}; pick one of {IMPLS}")


def stamp(seq: int) -> str:
    """An event's data: its sequence number and its publish time (``time.time_ns()``)."""
    return f"{seq} {time.time_ns()}"
