"""``Stream`` for formats other than SSE, here newline-delimited JSON."""

from collections.abc import AsyncIterator

import msgspec
from litestar import Litestar, get

from litestar_sse import Stream


async def rows() -> AsyncIterator[bytes]:
    for number in range(3):
        yield msgspec.json.encode({"row": number}) + b"\n"


@get("/export.ndjson")
async def export() -> Stream:
    # Stream sends the chunks as they are (str or bytes); say what they are.
    return Stream(rows(), media_type="application/x-ndjson", send_timeout=30)


app = Litestar([export])
