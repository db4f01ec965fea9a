"""What ``content`` can be: a value, a container, a generator, or a callable returning one."""

import time
from collections.abc import AsyncIterator, Iterator

from litestar import Litestar, get

from litestar_sse import ServerSentEvent


@get("/one", sync_to_thread=False)
def one_event() -> ServerSentEvent:
    return ServerSentEvent("just this")  # a str or bytes is a single event


@get("/list", sync_to_thread=False)
def from_list() -> ServerSentEvent:
    return ServerSentEvent(["a", "b", "c"])  # containers are iterated on the event loop


def read_lines() -> Iterator[str]:
    for line in ("x", "y"):
        time.sleep(0.01)  # blocking is fine: sync iterators run in a worker thread
        yield line


@get("/blocking", sync_to_thread=False)
def from_sync_generator() -> ServerSentEvent:
    return ServerSentEvent(read_lines())


async def ticks() -> AsyncIterator[int]:
    for tick in range(3):
        yield tick


@get("/async")
async def from_async_generator() -> ServerSentEvent:
    return ServerSentEvent(ticks())


@get("/lazy", sync_to_thread=False)
def from_callable() -> ServerSentEvent:
    return ServerSentEvent(ticks)  # called when the response starts, not in the handler


app = Litestar([one_event, from_list, from_sync_generator, from_async_generator, from_callable])
