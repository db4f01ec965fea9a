"""Before: FastAPI's ``fastapi.sse``."""

from collections.abc import AsyncIterable

from fastapi import FastAPI
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import BaseModel


class Item(BaseModel):
    name: str
    price: float


ITEMS = [Item(name="kettle", price=25.0), Item(name="mug", price=8.5)]

app = FastAPI()


@app.get("/items/stream", response_class=EventSourceResponse)
async def stream_items() -> AsyncIterable[Item]:
    for item in ITEMS:
        yield item


@app.post("/chat", response_class=EventSourceResponse)
async def chat() -> AsyncIterable[ServerSentEvent]:
    yield ServerSentEvent(raw_data="Hello", event="token", id="1")
    yield ServerSentEvent(data={"done": True}, event="end")
