"""The server of the end-to-end fan-out run: ``python -m benchmarks.fanout_server``.

uvicorn (httptools and uvloop when installed) serving a Litestar app whose broadcaster has one
topic:

* ``GET /events`` subscribes to it;
* ``POST /publish?events=E&rate=R&burst=B`` starts publishing ``E`` events from a background
  task of this process, ``B`` at a time, ``R`` events/s (``R=0``: as fast as the loop allows,
  yielding to it between bursts). Each event's data is ``"<seq> <time.monotonic()>"``: the
  client, on the same machine and so on the same monotonic clock, computes each delivery's
  latency from it;
* ``GET /stats`` says how many subscribed and whether publishing is done.

It binds 127.0.0.1 on a free port itself and prints ``PORT <n>`` once listening.
"""

# No ``from __future__ import annotations``: Litestar resolves the handlers' annotations, which
# name classes imported inside ``build_app``.
import argparse
import asyncio
import time
from typing import Any

from benchmarks.fanout_apps import MAX_QUEUE, PATH, PING, TOPIC
from benchmarks.server import serve


async def publish_events(publish: Any, events: int, rate: float, burst: int) -> None:
    started = time.monotonic()
    for seq in range(events):
        await publish(TOPIC, f"{seq} {time.monotonic():.6f}")
        if seq % burst == burst - 1:
            due = started + (seq + 1) / rate if rate else 0.0
            await asyncio.sleep(max(0.0, due - time.monotonic()))


def build_app() -> Any:
    from litestar import Litestar, Request, get, post
    from litestar.di import NamedDependency

    from litestar_sse import ServerSentEvent, SSEConfig, SSEPlugin
    from litestar_sse.broadcast import Broadcaster, MemoryBackend, Retention

    broadcaster = Broadcaster(
        MemoryBackend(retention=Retention(max_events=100)), max_queue=MAX_QUEUE
    )
    running: set[asyncio.Task[None]] = set()

    @get(PATH)
    async def events(
        request: Request[Any, Any, Any], broadcaster: NamedDependency[Broadcaster]
    ) -> ServerSentEvent:
        return await broadcaster.subscribe(TOPIC, connection=request)

    @post("/publish", status_code=202)
    async def publish(
        events: int, rate: float, burst: int, broadcaster: NamedDependency[Broadcaster]
    ) -> dict[str, bool]:
        task = asyncio.create_task(publish_events(broadcaster.publish, events, rate, burst))
        running.add(task)
        task.add_done_callback(running.discard)
        return {"started": True}

    @get("/stats")
    async def stats(broadcaster: NamedDependency[Broadcaster]) -> dict[str, Any]:
        counters = broadcaster.stats()
        return {
            "subscribers": counters.subscribers.get(TOPIC, 0),
            "published": counters.published,
            "publishing": bool(running),
        }

    config = SSEConfig(broadcaster=broadcaster, ping_interval=PING)
    return Litestar([events, publish, stats], plugins=[SSEPlugin(config)], openapi_config=None)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.parse_args(argv)
    serve(build_app())


if __name__ == "__main__":
    main()
