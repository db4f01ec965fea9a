"""Errors: a real HTTP error before the stream starts, a logged end once it runs."""

from collections.abc import AsyncIterator
from typing import Any

import msgspec
from litestar import Litestar, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

from litestar_sse import SSEPlugin, event_stream


class Message(msgspec.Struct):
    text: str


ROOMS: dict[str, list[Any]] = {
    "lobby": [{"text": "welcome"}, {"text": "hello"}],
    "broken": [{"text": "fine"}, {"text": 42}, {"text": "never sent"}],
}


async def replay(messages: list[Any]) -> AsyncIterator[Message]:
    for message in messages:
        yield message  # a dict: converted to Message, or the stream ends here


@get("/rooms/{name:str}")
@event_stream
async def room(name: FromPath[str]) -> AsyncIterator[Message]:
    # Not a generator itself: this body runs before the response starts, so the exception
    # is an ordinary 404, not a stream that opens and ends at once.
    if name not in ROOMS:
        raise NotFoundException(f"No room named {name!r}")
    return replay(ROOMS[name])


app = Litestar([room], plugins=[SSEPlugin()])
