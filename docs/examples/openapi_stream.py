"""A typed event stream, and how it is described in the app's OpenAPI document."""

from collections.abc import AsyncIterator

import msgspec
from litestar import Litestar, post
from litestar.params import JSONBody

from litestar_sse import SSEConfig, SSEPlugin, event_stream


class Prompt(msgspec.Struct):
    text: str


class Token(msgspec.Struct):
    text: str
    index: int


@post("/chat", status_code=200)
@event_stream
async def chat(data: JSONBody[Prompt]) -> AsyncIterator[Token]:
    for index, word in enumerate(data.text.split()):
        yield Token(word, index)


# The document Litestar serves at /schema/openapi.json (OpenAPI 3.1.0).
app = Litestar([chat], plugins=[SSEPlugin()])

# The same endpoint described with OpenAPI 3.2's itemSchema, for a document published as 3.2.
app_32 = Litestar([chat], plugins=[SSEPlugin(SSEConfig(openapi_item_schema=True))])
