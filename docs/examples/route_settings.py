"""Route-level stream settings over the app's SSEConfig."""

from collections.abc import AsyncIterator

from litestar import Litestar, get, post

from litestar_sse import SSEConfig, SSEPlugin, event_stream, openai_error


@get("/ticker")
@event_stream
async def ticker() -> AsyncIterator[int]:  # the app's settings
    for n in range(3):
        yield n


@post("/v1/completions", status_code=200)
@event_stream(retry=None, ping_interval=5, error_event=openai_error())
async def completions() -> AsyncIterator[str]:  # this route's own
    yield "Hello"
    yield "[DONE]"


@get(
    "/quiet",
    media_type="text/event-stream",
    sync_to_thread=False,
    opt={"sse": {"ping_interval": None}},
)
async def quiet() -> AsyncIterator[str]:  # the same, through the route's opt
    yield "shh"


app = Litestar(
    [ticker, completions, quiet],
    plugins=[SSEPlugin(SSEConfig(retry=3000, ping_interval=15))],
)
