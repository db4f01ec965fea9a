"""An app whose middleware checks that every write of a stream runs in its request's context.

The middleware sets a ContextVar to the request's id, as tracing (OpenTelemetry), log-context
and error-reporting middleware do, and wraps ``send`` to compare the ContextVar with that id on
every body write: events, pings and the end of the body. ``GET /report`` returns the counts.
``GET /broadcast`` streams a topic that a task of the app's lifespan publishes to, from a
context of its own: those events are sent from the hub's pass over its idle streams, outside
every request's task, and must still be sent in their own request's context.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, get
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from litestar_sse import ServerSentEvent
from litestar_sse.broadcast import Broadcaster, MemoryBackend

PING_INTERVAL = 0.05

REQUEST_ID: contextvars.ContextVar[int | None] = contextvars.ContextVar("request_id", default=None)
REPORT: Counter[str] = Counter()
_ids = itertools.count(1)


def request_context(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/report":
            await app(scope, receive, send)
            return
        own = next(_ids)
        REQUEST_ID.set(own)
        route = "broadcast " if scope["path"] == "/broadcast" else ""

        async def checked_send(message: Message) -> None:
            if message["type"] == "http.response.body":
                body = message.get("body", b"")
                kind = "ping" if body.startswith(b":") else "event" if body else "end"
                seen = REQUEST_ID.get()
                REPORT[f"{route}{kind} {'right' if seen == own else 'wrong'} context"] += 1
            await send(message)

        await app(scope, receive, checked_send)

    return middleware


@get("/idle")
async def idle() -> ServerSentEvent:
    """One event, then silence: the stream lives on pings."""

    async def one_then_wait() -> AsyncIterator[str]:
        yield "hello"
        await asyncio.sleep(3600)

    return ServerSentEvent(one_then_wait(), ping_interval=PING_INTERVAL)


@get("/ticking")
async def ticking() -> ServerSentEvent:
    """Events with pauses longer than the ping interval: events and pings alternate."""

    async def ticks() -> AsyncIterator[int]:
        for n in range(10):
            yield n
            await asyncio.sleep(PING_INTERVAL * 2.5)

    return ServerSentEvent(ticks(), ping_interval=PING_INTERVAL)


broadcaster = Broadcaster(MemoryBackend())


async def publish_ticks() -> None:
    REQUEST_ID.set(-1)  # the publisher's own context: a write that sees it is in the wrong one
    for n in itertools.count():
        await asyncio.sleep(PING_INTERVAL * 1.5)
        await broadcaster.publish("ticks", str(n))


@asynccontextmanager
async def lifespan(app: Litestar) -> AsyncIterator[None]:
    async with broadcaster:
        publisher = asyncio.create_task(publish_ticks())
        try:
            yield
        finally:
            publisher.cancel()


@get("/broadcast")
async def broadcast() -> ServerSentEvent:
    """A topic's events, sent by the hub while the stream waits; pings between them."""
    subscription = await broadcaster.open_subscription("ticks")
    return ServerSentEvent(subscription, ping_interval=PING_INTERVAL)


@get("/report", sync_to_thread=False)
def report() -> dict[str, Any]:
    return dict(REPORT)


app = Litestar(
    [idle, ticking, broadcast, report], middleware=[request_context], lifespan=[lifespan]
)
