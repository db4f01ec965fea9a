"""Typed objects are sent as JSON ``data``, serialized like the rest of the app's responses."""

import dataclasses
import datetime
from collections.abc import Iterator
from decimal import Decimal

import msgspec
import pydantic
from litestar import Litestar, get

from litestar_sse import ServerSentEvent, ServerSentEventMessage


class Trade(msgspec.Struct):
    symbol: str
    price: Decimal
    at: datetime.datetime


@dataclasses.dataclass
class Quote:
    symbol: str
    bid: float
    ask: float


class Alert(pydantic.BaseModel):
    level: str
    text: str


class Money:
    """A type msgspec does not know: the app says how to encode it."""

    def __init__(self, cents: int, currency: str) -> None:
        self.cents = cents
        self.currency = currency


def market() -> Iterator[object]:
    at = datetime.datetime(2026, 1, 2, 9, 30, tzinfo=datetime.timezone.utc)
    yield Trade("ACME", Decimal("12.50"), at)
    yield Quote("ACME", 12.45, 12.55)
    yield Alert(level="info", text="market open")
    yield Money(1250, "EUR")  # uses the app's type_encoders
    # Wrap an object in a message (or a dict) to give its event a type or an id.
    yield ServerSentEventMessage(data=Quote("INIT", 1.0, 1.1), event="quote", id="q-1")
    yield {"data": {"plain": "dict"}, "event": "snapshot"}  # a dict *as data* goes in "data"


@get("/market", sync_to_thread=False)
def stream_market() -> ServerSentEvent:
    return ServerSentEvent(market())


app = Litestar(
    [stream_market],
    type_encoders={Money: lambda money: f"{money.cents / 100:.2f} {money.currency}"},
)
