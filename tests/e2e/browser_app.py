"""App served to a real Chromium by test_browser.py.

``/events`` sends ``TOTAL`` events with ids 1..TOTAL, but ends each connection after
``PER_CONNECTION`` events, so the browser must reconnect (after ``retry``) with
``Last-Event-ID`` to get the rest. ``/log`` reports the ``Last-Event-ID`` of each connection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from litestar import Litestar, MediaType, Request, get

from litestar_sse import ServerSentEvent, ServerSentEventMessage

TOTAL = 9
PER_CONNECTION = 4
RETRY_MS = 150

connections: list[str | None] = []

PAGE = """<!doctype html>
<html><body>
<pre id="log"></pre>
<script>
window.received = [];
window.opens = 0;
const source = new EventSource("/events");
source.onopen = () => { window.opens += 1; };
source.onmessage = (e) => {
  window.received.push({type: e.type, data: e.data, id: e.lastEventId});
};
source.addEventListener("tick", (e) => {
  window.received.push({type: e.type, data: JSON.parse(e.data), id: e.lastEventId});
});
source.addEventListener("done", (e) => {
  window.received.push({type: e.type, data: e.data, id: e.lastEventId});
  source.close();
  window.finished = true;
});
</script>
</body></html>
"""


def _event(number: int) -> ServerSentEventMessage:
    if number == TOTAL:
        return ServerSentEventMessage(data="bye", event="done", id=number)
    if number % 2:
        return ServerSentEventMessage(data=f"line {number}\nsecond line", id=number)
    return ServerSentEventMessage(data={"n": number, "text": "é\u2028"}, event="tick", id=number)


@get("/", media_type=MediaType.HTML, sync_to_thread=False)
def page() -> str:
    return PAGE


@get("/events", sync_to_thread=False)
def events(request: Request[object, object, object]) -> ServerSentEvent:
    last = request.headers.get("last-event-id")
    connections.append(last)
    start = int(last) + 1 if last else 1

    async def produce() -> AsyncIterator[Any]:
        yield ServerSentEventMessage(data=None, retry=RETRY_MS)
        for number in range(start, min(start + PER_CONNECTION, TOTAL + 1)):
            yield _event(number)

    return ServerSentEvent(produce())


@get("/log", sync_to_thread=False)
def log() -> dict[str, Any]:
    return {"connections": connections}


app = Litestar([page, events, log])
