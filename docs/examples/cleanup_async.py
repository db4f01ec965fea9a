"""Cleanup in an async generator: ``finally`` runs on disconnect and may ``await``."""

import asyncio
import logging
from collections.abc import AsyncIterator

from litestar import Litestar, get

from litestar_sse import ServerSentEvent

logger = logging.getLogger(__name__)


class Room:
    """Listeners of a chat room, each with its own queue."""

    def __init__(self) -> None:
        self.listeners: set[asyncio.Queue[str]] = set()

    async def join(self) -> asyncio.Queue[str]:
        queue: asyncio.Queue[str] = asyncio.Queue()
        self.listeners.add(queue)
        return queue

    async def leave(self, queue: asyncio.Queue[str]) -> None:
        await asyncio.sleep(0)  # stands for real async work: a DB write, an UNSUBSCRIBE, ...
        self.listeners.discard(queue)

    def say(self, text: str) -> None:
        for queue in self.listeners:
            queue.put_nowait(text)


room = Room()


async def listen() -> AsyncIterator[str]:
    queue = await room.join()
    try:
        while True:
            yield await queue.get()
    finally:
        # The client went away: we get here through one CancelledError (or GeneratorExit),
        # and awaiting is allowed. No asyncio.shield() needed.
        await room.leave(queue)


async def client_left() -> None:
    logger.info("a listener disconnected; %d left", len(room.listeners))


@get("/room")
async def join_room() -> ServerSentEvent:
    return ServerSentEvent(listen(), on_disconnect=client_left, ping_interval=15)


app = Litestar([join_room])
