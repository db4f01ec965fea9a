"""The app of the slow-client soak test (``tests.soak.slow_app:app``).

``/ticks`` is what healthy clients read: an event every ``TICK`` seconds carrying its sequence
number and the server time it was produced. ``/flood/{key}`` sends big events (each in one
send) as fast as the client takes them; ``/burst/{key}`` sends one event bigger than every
buffer on the way and then waits for ever: the write that waits is one of the event's 64 KiB
slices, or a ping if the server took the whole event. ``/state`` reports what happened,
including when each slow stream's last ASGI ``send`` began and ended (a server may take
several writes into its own buffers before one has to wait).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from litestar import Litestar, Request, get
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from litestar_sse import ServerSentEvent

TICK = 0.05
PING_INTERVAL = 0.5
SEND_TIMEOUT = 2.0
FLOOD_EVENT = "f" * (60 * 1024)  # one send: under the 64 KiB slice
BURST_EVENT = "b" * (8 * 1024 * 1024)

STATE: dict[str, dict[str, Any]] = {}


def _entry(key: str) -> dict[str, Any]:
    return STATE.setdefault(
        key,
        {
            "last_send_done": None,
            "finally": None,
            "on_disconnect": 0,
            "waiting": False,
            "send_started": None,
            "send_done": None,
            "send_bytes": None,
        },
    )


def _record(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return _entry(str(request.path_params["key"]))


def _response(record: dict[str, Any], events: AsyncIterator[str]) -> ServerSentEvent:
    def on_disconnect() -> None:
        record["on_disconnect"] += 1

    return ServerSentEvent(
        events,
        ping_interval=PING_INTERVAL,
        send_timeout=SEND_TIMEOUT,
        on_disconnect=on_disconnect,
    )


@get("/state", sync_to_thread=False)
def state() -> dict[str, dict[str, Any]]:
    return STATE


@get("/ticks")
async def ticks() -> ServerSentEvent:
    async def events() -> AsyncIterator[str]:
        seq = 0
        while True:
            yield f"{seq} {time.time()}"
            seq += 1
            await asyncio.sleep(TICK)

    return ServerSentEvent(events(), ping_interval=PING_INTERVAL, send_timeout=SEND_TIMEOUT)


@get("/flood/{key:str}")
async def flood(request: Request[Any, Any, Any]) -> ServerSentEvent:
    record = _record(request)

    async def events() -> AsyncIterator[str]:
        try:
            while True:
                yield FLOOD_EVENT
                record["last_send_done"] = time.time()
        finally:
            record["finally"] = time.time()

    return _response(record, events())


@get("/burst/{key:str}")
async def burst(request: Request[Any, Any, Any]) -> ServerSentEvent:
    record = _record(request)

    async def events() -> AsyncIterator[str]:
        try:
            yield BURST_EVENT
            # The server took the whole event (it sits in its buffers): from here on the only
            # writes are pings, and the first one has to wait for a client that never reads.
            # (A server that applies backpressure per send, as uvicorn does, never gets here:
            # one of the event's slices waits.)
            record["last_send_done"] = time.time()
            record["waiting"] = True
            await asyncio.Event().wait()
            yield "never"  # pragma: no cover
        finally:
            record["finally"] = time.time()

    return _response(record, events())


def _timing_sends(app: ASGIApp) -> ASGIApp:
    """Record when the last ``send`` of each slow stream began and, if it did, ended."""

    async def timed_app(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(("/flood/", "/burst/")):
            await app(scope, receive, send)
            return
        entry = _entry(path.rsplit("/", 1)[1])

        async def timed_send(message: Message) -> None:
            entry["send_started"] = time.time()
            entry["send_bytes"] = len(message.get("body", b""))
            await send(message)
            entry["send_done"] = time.time()

        await app(scope, receive, timed_send)

    return timed_app


app = _timing_sends(Litestar([state, ticks, flood, burst]))
