"""Thousands of open streams: keep full garbage collections short with gc.freeze()."""

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator

from litestar import Litestar

from litestar_sse import SSEConfig, SSEPlugin
from litestar_sse.broadcast import Broadcaster

REFREEZE_EVERY = 300.0  # seconds: one full collection per period instead of one every few


def refreeze() -> None:
    gc.unfreeze()  # what was frozen goes back to the collector...
    gc.collect()  # ...which frees what became garbage since (closed streams), in one pause...
    gc.freeze()  # ...and everything still alive is frozen again


@contextlib.asynccontextmanager
async def frozen_heap(app: Litestar) -> AsyncIterator[None]:
    async def every_period() -> None:
        while True:
            await asyncio.sleep(REFREEZE_EVERY)
            refreeze()

    refreeze()  # the app's own objects, at once
    task = asyncio.create_task(every_period())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        gc.unfreeze()


app = Litestar(
    [],  # your handlers
    plugins=[SSEPlugin(SSEConfig(broadcaster=Broadcaster()))],
    lifespan=[frozen_heap],
)
