"""What the bad-request tests send garbage to, under a real uvicorn
(``tests.e2e.bad_request_app:app``): the ``last_event_id`` dependency and a broadcast
subscription."""

from __future__ import annotations

from typing import Any

from litestar import Litestar, Request, get
from litestar.di import NamedDependency
from litestar.params import FromQuery

from litestar_sse import ServerSentEvent, SSEConfig, SSEPlugin
from litestar_sse._plugin.last_event_id import last_event_id_sent
from litestar_sse.broadcast import Broadcaster

broadcaster = Broadcaster()


@get("/last-event-id", sync_to_thread=False)
def echo(
    request: Request[Any, Any, Any], last_event_id: NamedDependency[str | None]
) -> dict[str, Any]:
    return {"last_event_id": last_event_id, "sent": last_event_id_sent(request)}


@get("/events")
async def events(request: Request[Any, Any, Any], topic: FromQuery[str]) -> ServerSentEvent:
    return await broadcaster.subscribe(topic, connection=request)


@get("/publish/{topic:str}")
async def publish(request: Request[Any, Any, Any]) -> str:
    return await broadcaster.publish(str(request.path_params["topic"]), "x")


@get("/health", sync_to_thread=False)
def health() -> str:
    return "ok"


app = Litestar(
    [echo, events, publish, health], plugins=[SSEPlugin(SSEConfig(broadcaster=broadcaster))]
)
