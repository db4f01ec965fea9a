"""Broadcast: publish to a topic, every subscriber of it gets the event."""

from typing import Annotated, Any

import msgspec
from litestar import Litestar, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery, JSONBody, PathParameter

from litestar_sse import ServerSentEvent, SSEConfig, SSEPlugin
from litestar_sse.broadcast import Broadcaster

Topic = Annotated[str, PathParameter(pattern=r"^[a-z0-9-]{1,40}$")]


class Score(msgspec.Struct):
    home: int
    away: int


@get("/matches/{match:str}/events")
async def follow_match(
    request: Request[Any, Any, Any], match: Topic, broadcaster: NamedDependency[Broadcaster]
) -> ServerSentEvent:
    # connection=request: Last-Event-ID (or ?lastEventId=) resumes, authorize sees the request
    return await broadcaster.subscribe(f"match:{match}", connection=request)


@get("/matches/events")
async def follow_matches(
    request: Request[Any, Any, Any],
    match: FromQuery[list[str]],
    broadcaster: NamedDependency[Broadcaster],
) -> ServerSentEvent:
    # Several topics on one stream, in publication order: /matches/events?match=a&match=b
    topics = [f"match:{name}" for name in match]
    return await broadcaster.subscribe(topics, connection=request, ping_interval=20)


@post("/matches/{match:str}/score")
async def post_score(
    match: Topic, data: JSONBody[Score], broadcaster: NamedDependency[Broadcaster]
) -> dict[str, str]:
    event_id = await broadcaster.publish(f"match:{match}", data, event="score")
    return {"id": event_id}  # e.g. "5f0c2a91-17": <epoch>-<position>


app = Litestar(
    [follow_match, follow_matches, post_score],
    plugins=[SSEPlugin(SSEConfig(broadcaster=Broadcaster()))],
)
