"""The workload every implementation serves, so that all of them do the same work.

Nothing in here imports a web framework: the server subprocesses and the in-process harness
build apps from these descriptions, and the load clients only need the counting helpers.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import msgspec


class Payload(str, enum.Enum):
    """What each event carries."""

    INT = "int"  # the event index, the smallest possible payload
    OBJECT = "object"  # a five-field record that must be JSON-encoded per event


class Source(str, enum.Enum):
    """How the handler produces its items."""

    ASYNC = "async"  # an async generator
    SYNC = "sync"  # a plain generator: frameworks that hop to a thread per item pay for it here


@dataclasses.dataclass(frozen=True)
class StreamSpec:
    """One stream shape. The number of events travels in the query string (``?n=``) so that
    one server process can serve both the single-client and the concurrent runs."""

    payload: Payload = Payload.INT
    source: Source = Source.ASYNC
    # Seconds between keep-alive comments; None means the library's default configuration.
    ping: float | None = None
    # Idle mode: send one event, then keep the stream open (pinging, if configured) until the
    # client goes away. Used by the idle-streams scenario.
    idle: bool = False

    def to_cli(self) -> str:
        return msgspec.json.encode(dataclasses.asdict(self)).decode()

    @classmethod
    def from_cli(cls, text: str) -> StreamSpec:
        raw: dict[str, Any] = msgspec.json.decode(text)
        return cls(
            payload=Payload(raw["payload"]),
            source=Source(raw["source"]),
            ping=raw["ping"],
            idle=raw["idle"],
        )


# The record behind Payload.OBJECT, in the three shapes a user is likely to have. litestar_sse
# is handed the typed object; peers that cannot serialize objects get msgspec-encoded JSON text
# (the fastest honest choice a user of those libraries would make).
class ItemStruct(msgspec.Struct):
    id: int
    name: str
    price: float
    tags: list[str]
    in_stock: bool


@dataclasses.dataclass
class ItemDataclass:
    id: int
    name: str
    price: float
    tags: list[str]
    in_stock: bool


ITEM_NAME = "widget"
ITEM_TAGS = ["red", "small"]


def item_struct(i: int) -> ItemStruct:
    return ItemStruct(id=i, name=ITEM_NAME, price=i * 0.25, tags=ITEM_TAGS, in_stock=i % 2 == 0)


def item_dataclass(i: int) -> ItemDataclass:
    return ItemDataclass(id=i, name=ITEM_NAME, price=i * 0.25, tags=ITEM_TAGS, in_stock=i % 2 == 0)


def item_fields(i: int) -> dict[str, Any]:
    """Keyword arguments for building the same record as any other model class (pydantic)."""
    return {
        "id": i,
        "name": ITEM_NAME,
        "price": i * 0.25,
        "tags": ITEM_TAGS,
        "in_stock": i % 2 == 0,
    }


JSON_ENCODER = msgspec.json.Encoder()


def item_json(i: int) -> str:
    return JSON_ENCODER.encode(item_struct(i)).decode()


def query_count(query_string: bytes, default: int) -> int:
    """Parse ``n=<int>`` from a raw query string (the raw ASGI app has no framework to do it)."""
    for part in query_string.split(b"&"):
        key, _, value = part.partition(b"=")
        if key == b"n" and value.isdigit():
            return int(value)
    return default


DEFAULT_COUNT = 1000


async def _sleep_forever() -> None:
    # Imported here so that the load clients, which share this module, stay light.
    import anyio

    await anyio.sleep_forever()


async def async_items(
    n: int, item: Callable[[int], object] | None, idle: bool = False
) -> AsyncIterator[object]:
    """The handler body every implementation runs: yield ``item(i)`` for i in range(n).

    ``item`` is None for the plain-int payload, so nobody pays a call per event for it. In
    idle mode the stream yields one item, then waits for the client to leave.
    """
    if idle:
        yield 0 if item is None else item(0)
        await _sleep_forever()
    elif item is None:
        for i in range(n):
            yield i
    else:
        for i in range(n):
            yield item(i)


def sync_items(n: int, item: Callable[[int], object] | None) -> Iterator[object]:
    """Like :func:`async_items`, as the plain generator of the sync-iterator scenario."""
    if item is None:
        for i in range(n):
            yield i
    else:
        for i in range(n):
            yield item(i)
