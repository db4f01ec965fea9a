"""Compress ordinary responses, but not the event streams."""

from collections.abc import AsyncIterator

from litestar import Litestar, get
from litestar.config.compression import CompressionConfig

from litestar_sse import ServerSentEvent


async def news() -> AsyncIterator[str]:
    yield "all quiet"


@get("/events/news", opt={"skip_compression": True})
async def news_stream() -> ServerSentEvent:
    return ServerSentEvent(news(), ping_interval=20)


@get("/report", sync_to_thread=False)
def report() -> str:
    return "a large report " * 100


app = Litestar(
    [news_stream, report],
    compression_config=CompressionConfig(backend="gzip", exclude_opt_key="skip_compression"),
)
