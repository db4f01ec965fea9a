"""App-wide defaults: every stream of the app uses them unless it sets its own."""

from collections.abc import AsyncIterator

from litestar import Litestar, get

from litestar_sse import ServerSentEvent, SSEConfig, SSEPlugin

config = SSEConfig(
    ping_interval=20,  # a ": ping" comment after 20 s without a write
    retry=3_000,  # browsers wait 3 s before reconnecting: sent once, when a stream opens
    send_timeout=30,  # drop a client that has not taken a write for 30 s
    headers={"X-Stream-Version": "2"},  # on every event stream of the app
)


async def headlines() -> AsyncIterator[str]:
    yield "markets open"
    yield "rain expected"


@get("/news")
async def news() -> ServerSentEvent:
    # Sets none of the defaults: pings, retry, send timeout and the header come from config.
    return ServerSentEvent(headlines(), event_type="news")


@get("/alerts", response_headers={"X-Stream-Version": "3"})
async def alerts() -> ServerSentEvent:
    # What a response or its route sets wins, None included: this one never pings, and
    # its retry is written on every event, as without the plugin.
    return ServerSentEvent(headlines(), ping_interval=None, retry_duration=10_000)


app = Litestar([news, alerts], plugins=[SSEPlugin(config)])
