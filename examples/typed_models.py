"""Typed objects as events: a msgspec Struct, a dataclass and a pydantic model.

Each is yielded as it is and arrives as JSON ``data``; messages give them an event type, so the
page can listen to each kind separately::

    .venv/bin/uvicorn examples.typed_models:app

then open http://127.0.0.1:8000, or ``curl -N http://127.0.0.1:8000/orders``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import itertools
import random
from collections.abc import AsyncIterator
from decimal import Decimal

import msgspec
import pydantic
from litestar import Litestar, MediaType, get
from litestar.params import FromQuery

from litestar_sse import ServerSentEvent, ServerSentEventMessage


class OrderPlaced(msgspec.Struct):
    """A msgspec Struct: the fastest to encode."""

    order_id: int
    customer: str
    total: Decimal
    placed_at: datetime.datetime


@dataclasses.dataclass
class Shipment:
    """A standard-library dataclass."""

    order_id: int
    carrier: str
    tracking: str


class Review(pydantic.BaseModel):
    """A pydantic model, serialized through Litestar's pydantic support."""

    order_id: int
    stars: int = pydantic.Field(ge=1, le=5)
    comment: str


CUSTOMERS = ("ada", "grace", "linus", "guido", "barbara")
CARRIERS = ("DHL", "UPS", "La Poste")
COMMENTS = ("Great kettle.", "Arrived early!", "Box was dented.", "Would buy again.")


async def order_events(limit: int | None, interval: float) -> AsyncIterator[object]:
    rng = random.Random(7)
    for order_id in itertools.count(1):
        if limit is not None and order_id > limit:
            return
        placed = OrderPlaced(
            order_id=order_id,
            customer=rng.choice(CUSTOMERS),
            total=Decimal(rng.randrange(500, 20_000)) / 100,
            placed_at=datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0),
        )
        # The event type tells the page which kind of object the JSON is.
        yield ServerSentEventMessage(data=placed, event="placed", id=f"{order_id}.1")
        await asyncio.sleep(interval)
        shipment = Shipment(order_id, rng.choice(CARRIERS), f"TRK{rng.randrange(10**8):08d}")
        yield ServerSentEventMessage(data=shipment, event="shipped", id=f"{order_id}.2")
        await asyncio.sleep(interval)
        review = Review(order_id=order_id, stars=rng.randint(1, 5), comment=rng.choice(COMMENTS))
        yield ServerSentEventMessage(data=review, event="reviewed", id=f"{order_id}.3")
        await asyncio.sleep(interval)


@get("/orders")
async def orders(
    limit: FromQuery[int | None] = None, interval: FromQuery[float] = 0.7
) -> ServerSentEvent:
    """Each order is placed, shipped and reviewed (``?limit=N`` stops after N orders)."""
    return ServerSentEvent(order_events(limit, interval), ping_interval=15)


async def plain_objects() -> AsyncIterator[object]:
    # Yielded bare, objects are plain "message" events of JSON data.
    yield OrderPlaced(1, "ada", Decimal("9.90"), datetime.datetime(2026, 1, 1, 12, 0))
    yield Shipment(1, "DHL", "TRK00000001")
    yield Review(order_id=1, stars=5, comment="Perfect.")


@get("/plain")
async def plain() -> ServerSentEvent:
    """Three objects, one of each kind, as ``message`` events."""
    return ServerSentEvent(plain_objects())


PAGE = """<!doctype html>
<html lang="en">
<meta charset="utf-8">
<title>litestar-sse: typed events</title>
<link rel="icon" href="data:,">
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 2rem; }
  table { border-collapse: collapse; width: 100%; }
  td, th { padding: .3rem .6rem; border-bottom: 1px solid #ddd; text-align: left; }
  .placed { color: #1f6feb; } .shipped { color: #8250df; } .reviewed { color: #1a7f37; }
</style>
<h1>Orders</h1>
<p>Each row is one event; its type says which model the JSON came from.</p>
<table>
  <thead><tr><th>id</th><th>event</th><th>data</th></tr></thead>
  <tbody id="rows"></tbody>
</table>
<script>
  const rows = document.getElementById("rows");
  const source = new EventSource("/orders");
  for (const kind of ["placed", "shipped", "reviewed"]) {
    source.addEventListener(kind, (event) => {
      const data = JSON.parse(event.data);
      const row = rows.insertRow(0);
      row.insertCell().textContent = event.lastEventId;
      const name = row.insertCell();
      name.textContent = kind;
      name.className = kind;
      row.insertCell().textContent = JSON.stringify(data);
      while (rows.rows.length > 30) rows.deleteRow(-1);
    });
  }
</script>
</html>
"""


@get("/", media_type=MediaType.HTML)
async def index() -> str:
    return PAGE


app = Litestar([orders, plain, index])
