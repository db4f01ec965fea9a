"""App for the client-safe framing tests: a real browser and Node's eventsource read it.

``/events`` has everything on that line-based decoders used to stumble over: the app's
``retry`` (sent once, as a field line that belongs to the first event), an id on every event,
pings between events (the ping interval is shorter than the pause between events), typed
items, and a reconnection every ``PER_CONNECTION`` events, resumed with ``Last-Event-ID``.
``/log`` tells, for each connection, the ``Last-Event-ID`` it sent and when it opened and ended.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from litestar import Litestar, MediaType, Request, get

from litestar_sse import ServerSentEventMessage, SSEConfig, SSEPlugin, event_stream

TOTAL = 8
PER_CONNECTION = 3
RETRY_MS = 200
PAUSE = 0.06  # between events: two or three pings each
PING_INTERVAL = 0.02

connections: list[dict[str, Any]] = []


class Tick(msgspec.Struct):
    n: int
    text: str


def event_of(number: int) -> ServerSentEventMessage:
    if number == TOTAL:
        return ServerSentEventMessage(data="bye", event="done", id=number)
    if number % 2:
        return ServerSentEventMessage(data=f"line {number}\nsecond line", id=number)
    return ServerSentEventMessage(data=Tick(number, "é\u2028"), event="tick", id=number)


PAGE = """<!doctype html>
<html><body>
<script>
window.received = [];
const source = new EventSource("/events");
const keep = (e) => window.received.push({type: e.type, data: e.data, id: e.lastEventId});
source.onmessage = keep;
source.addEventListener("tick", keep);
source.addEventListener("done", (e) => { keep(e); source.close(); window.finished = true; });
</script>
</body></html>
"""


@get("/", media_type=MediaType.HTML, sync_to_thread=False)
def page() -> str:
    return PAGE


@get("/events")
@event_stream
async def events(request: Request[Any, Any, Any]) -> AsyncIterator[ServerSentEventMessage]:
    last = request.headers.get("last-event-id")
    record: dict[str, Any] = {"last_event_id": last, "opened": time.monotonic(), "ended": None}
    connections.append(record)
    start = int(last) + 1 if last else 1
    try:
        for number in range(start, min(start + PER_CONNECTION, TOTAL + 1)):
            await asyncio.sleep(PAUSE)
            yield event_of(number)
    finally:
        record["ended"] = time.monotonic()


@get("/log", sync_to_thread=False)
def log() -> dict[str, Any]:
    return {"connections": connections}


app = Litestar(
    [page, events, log],
    plugins=[SSEPlugin(SSEConfig(retry=RETRY_MS, ping_interval=PING_INTERVAL))],
)


def expected_events() -> list[dict[str, str]]:
    """What an EventSource must report, in order: every event once, none empty."""
    out = []
    for number in range(1, TOTAL + 1):
        event = event_of(number)
        data = event.data if isinstance(event.data, str) else msgspec.json.encode(event.data)
        out.append(
            {
                "type": event.event or "message",
                "data": data if isinstance(data, str) else data.decode(),
                "id": str(number),
            }
        )
    return out


def reconnection_gaps(log: list[dict[str, Any]]) -> list[float]:
    """Seconds between the end of each connection and the opening of the next one."""
    return [after["opened"] - before["ended"] for before, after in itertools.pairwise(log)]
