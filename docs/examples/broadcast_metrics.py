"""The broadcaster's counters, as Prometheus text."""

from litestar import Litestar, MediaType, get
from litestar.di import NamedDependency

from litestar_sse import Broadcaster, SSEConfig, SSEPlugin


@get("/metrics", media_type=MediaType.TEXT)
async def metrics(broadcaster: NamedDependency[Broadcaster]) -> str:
    stats = broadcaster.stats()  # this process only: each worker reports its own
    return (
        f"sse_subscribers {sum(stats.subscribers.values())}\n"
        f"sse_topics_with_subscribers {len(stats.subscribers)}\n"
        f"sse_published_total {stats.published}\n"
        f"sse_received_total {stats.received}\n"
        f"sse_delivered_total {stats.delivered}\n"
        f"sse_dropped_total {stats.dropped}\n"
        f"sse_slow_disconnected_total {stats.disconnected}\n"
    )


app = Litestar([metrics], plugins=[SSEPlugin(SSEConfig(broadcaster=Broadcaster()))])
