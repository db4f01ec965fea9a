"""An app whose middleware checks that every write of a stream runs in its request's context.

The middleware sets a ContextVar to the request's id, as tracing (OpenTelemetry), log-context
and error-reporting middleware do, and wraps ``send`` to compare the ContextVar with that id on
every body write: events, pings and the end of the body. ``GET /report`` returns the counts.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

from litestar import Litestar, get
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from litestar_sse import ServerSentEvent

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

        async def checked_send(message: Message) -> None:
            if message["type"] == "http.response.body":
                body = message.get("body", b"")
                kind = "ping" if body.startswith(b":") else "event" if body else "end"
                seen = REQUEST_ID.get()
                REPORT[f"{kind} {'right' if seen == own else 'wrong'} context"] += 1
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


@get("/report", sync_to_thread=False)
def report() -> dict[str, Any]:
    return dict(REPORT)


app = Litestar([idle, ticking, report], middleware=[request_context])
