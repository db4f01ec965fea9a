"""A batch to publish at once: ``BatchEvent``, checked when it is made, and a batch's bounds.

``Broadcaster.publish_many`` takes the events of a batch as :class:`BatchEvent` values: each
checks its topic, event type and idempotency key when it is made, so a bad one fails where it
is written, and a batch is checked whole (its count, its bytes, the event types the
broadcaster reserves, its data encoded) before anything of it is published.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

from litestar_sse.broadcast._backends.base import Outgoing
from litestar_sse.broadcast._events.format import EventFormat
from litestar_sse.broadcast._topics import check_idempotency_key, check_topic
from litestar_sse.codec._encoder import check_event_type, to_utf8

__all__ = ("DEFAULT_MAX_BATCH", "DEFAULT_MAX_BATCH_BYTES", "BatchEvent", "encode_batch")

DEFAULT_MAX_BATCH: Final = 1000
"""The default ``max_batch`` of a ``Broadcaster``: most events of one ``publish_many``."""

DEFAULT_MAX_BATCH_BYTES: Final = 4 * 2**20
"""The default ``max_batch_bytes``: most bytes (data and event types, encoded) of one batch."""


@dataclass(frozen=True)
class BatchEvent:
    """One event of a batch for :meth:`~litestar_sse.broadcast.Broadcaster.publish_many`.

    Args:
        topic: Its topic (the rule for topic names applies).
        data: Its data, encoded as ``publish`` encodes it.
        event: Its event type, or ``None``.
        idempotency_key: As ``publish``'s: a retry of the batch stores this event once.

    Raises:
        InvalidTopicError: an invalid topic (a ``ValueError``).
        TypeError, ValueError: an invalid event type or idempotency key.
    """

    topic: str
    data: Any
    event: str | None = None
    idempotency_key: str | None = None

    def __post_init__(self) -> None:
        # kept as the checks return them: a str subclass becomes a plain str
        object.__setattr__(self, "topic", check_topic(self.topic))
        if self.event is not None:
            check_event_type(self.event)
        if self.idempotency_key is not None:
            object.__setattr__(self, "idempotency_key", check_idempotency_key(self.idempotency_key))


def encode_batch(
    events: Iterable[BatchEvent],
    event_format: EventFormat,
    encode_data: Callable[[Any], bytes],
    max_batch: int,
    max_batch_bytes: int,
) -> list[Outgoing]:
    """The batch as the backend takes it, checked whole: nothing is published before this
    returns.

    Raises:
        TypeError: an item is not a :class:`BatchEvent`, or its data cannot be encoded.
        ValueError: more than ``max_batch`` events or ``max_batch_bytes`` bytes, or an event
            type the broadcaster reserves (the message names the event's index).
    """
    if isinstance(events, (str, bytes, BatchEvent)):
        raise TypeError(f"publish_many takes an iterable of BatchEvent, got {events!r}")
    batch: list[Outgoing] = []
    size = 0
    for index, item in enumerate(events):
        if index >= max_batch:
            raise ValueError(
                f"The batch has more than max_batch={max_batch} events: split it into several "
                "publish_many calls, or give the Broadcaster a larger max_batch"
            )
        if not isinstance(item, BatchEvent):
            raise TypeError(f"events[{index}] must be a BatchEvent, got {item!r}")
        event = None
        if item.event is not None:
            try:
                event = to_utf8(event_format.check_event_type(item.event))
            except ValueError as exc:
                raise ValueError(f"events[{index}]: {exc}") from exc
        data = encode_data(item.data)
        size += len(data) + (0 if event is None else len(event))
        if size > max_batch_bytes:
            raise ValueError(
                f"The batch is larger than max_batch_bytes={max_batch_bytes} bytes (at "
                f"events[{index}]): split it into several publish_many calls, or give the "
                "Broadcaster a larger max_batch_bytes"
            )
        batch.append(Outgoing(item.topic, event, data, item.idempotency_key))
    return batch
