"""Resume where the client left off, with event ids taken from your own data."""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from litestar import Litestar, get
from litestar.di import NamedDependency

from litestar_sse import ServerSentEventMessage, SSEConfig, SSEPlugin, event_stream

POLL_SECONDS = 1.0


@dataclass
class Order:
    seq: int  # increasing, assigned when the order is stored: the event id
    item: str


# Stands in for a table; new orders are appended as they come in.
ORDERS: list[Order] = [Order(1, "kettle"), Order(2, "mug"), Order(3, "teapot")]


def orders_after(seq: int) -> list[Order]:
    return [order for order in ORDERS if order.seq > seq]


def parse_seq(last_event_id: str | None) -> int:
    """The sequence number the client has seen; 0 (everything) if it sent nothing usable."""
    if last_event_id is None or not last_event_id.isdecimal():
        return 0
    return int(last_event_id)


async def follow(seq: int) -> AsyncIterator[ServerSentEventMessage]:
    while True:
        for order in orders_after(seq):  # first what was missed, then each new order
            yield ServerSentEventMessage(data=order.item, event="order", id=order.seq)
            seq = order.seq
        await asyncio.sleep(POLL_SECONDS)


@get("/orders")
@event_stream
async def orders(
    last_event_id: NamedDependency[str | None],
) -> AsyncIterator[ServerSentEventMessage]:
    return follow(parse_seq(last_event_id))


# retry: browsers wait 2 s, not their default of about 3 s, before they reconnect.
app = Litestar([orders], plugins=[SSEPlugin(SSEConfig(retry=2_000))])
