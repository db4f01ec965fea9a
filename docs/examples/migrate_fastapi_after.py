"""After: the same endpoints with Litestar and ``litestar_sse``."""

from collections.abc import AsyncIterator

from litestar import Litestar, get, post
from pydantic import BaseModel

from litestar_sse import ServerSentEvent, ServerSentEventMessage


class Item(BaseModel):
    name: str
    price: float


ITEMS = [Item(name="kettle", price=25.0), Item(name="mug", price=8.5)]


async def items() -> AsyncIterator[Item]:
    for item in ITEMS:
        yield item  # JSON, like FastAPI; add sep="\n" below to match its bytes exactly


@get("/items/stream")
async def stream_items() -> ServerSentEvent:
    return ServerSentEvent(items(), ping_interval=15)  # FastAPI pings every 15 s


async def reply() -> AsyncIterator[ServerSentEventMessage]:
    yield ServerSentEventMessage(data="Hello", event="token", id="1")  # str is sent as is
    yield ServerSentEventMessage(data={"done": True}, event="end")


@post("/chat", status_code=200)  # Litestar answers POST with 201 unless told otherwise
async def chat() -> ServerSentEvent:
    return ServerSentEvent(reply(), ping_interval=15)


app = Litestar([stream_items, chat])
