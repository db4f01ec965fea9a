"""History, slow subscribers and authorization, all set on the broadcaster."""

from typing import Any

from litestar import Litestar, Request, get
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler
from litestar.params import FromPath

from litestar_sse import ServerSentEvent, SSEConfig, SSEPlugin
from litestar_sse.broadcast import Broadcaster, MemoryBackend, Retention


def retention_of(topic: str) -> Retention:
    # Chat rooms keep an hour of history for reconnecting clients; prices only the last 100.
    if topic.startswith("room:"):
        return Retention(max_events=10_000, max_age=3600)
    return Retention(max_events=100)


async def may_subscribe(connection: ASGIConnection[Any, Any, Any, Any] | None, topic: str) -> bool:
    # Asked for every topic of every subscription, before the stream starts (403 if False).
    if connection is None or not topic.startswith("user:"):
        return True
    return connection.headers.get("x-user") == topic.removeprefix("user:")


broadcaster = Broadcaster(
    MemoryBackend(retention=retention_of),
    max_queue=500,  # events a subscriber may fall behind before it counts as slow
    overflow="drop_oldest",  # skip to the newest 500 and send a gap event ("disconnect": end it)
    authorize=may_subscribe,
)


def signed_in(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    # An ordinary Litestar guard: runs before the handler, so before anything is subscribed.
    if "x-user" not in connection.headers:
        raise NotAuthorizedException("sign in first")


@get("/inbox/{user:str}", guards=[signed_in])
async def inbox(request: Request[Any, Any, Any], user: FromPath[str]) -> ServerSentEvent:
    return await broadcaster.subscribe(f"user:{user}", connection=request)


app = Litestar([inbox], plugins=[SSEPlugin(SSEConfig(broadcaster=broadcaster))])
