"""What an event source yields: events (with their data decoded on request) and gaps."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

import msgspec

__all__ = (
    "DataDecodeError",
    "Event",
    "EventSourceError",
    "Gap",
    "GapError",
    "ResponseError",
    "data_decoder",
)

T = TypeVar("T")


class EventSourceError(Exception):
    """An event source stopped for good: a refused or malformed response, a stream over a
    limit, too many failed attempts, or a broken stream it may not resume on its own."""


class ResponseError(EventSourceError):
    """The server's response ended the source: a status that is not retried (``4xx`` other
    than ``408``/``429``, an unfollowed redirect), a retried status when the request may not
    be repeated, or a ``Content-Type`` that is not ``text/event-stream``.

    Attributes:
        status_code: The response's status.
        headers: The response's headers.
    """

    def __init__(self, message: str, status_code: int, headers: Mapping[str, str]) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.headers = headers


class GapError(EventSourceError):
    """Raised instead of yielding a :class:`Gap` when the source was made with
    ``gaps="raise"``. The source stays usable: iterate again to read on."""

    def __init__(self, gap: Gap) -> None:
        super().__init__(f"events were missed ({gap.reason}); resumed after id {gap.id!r}")
        self.gap = gap


class DataDecodeError(EventSourceError):
    """An event's data did not decode into the ``data_type`` the source was made with.

    The source stays usable: iterate again to read the next event.
    """

    def __init__(self, event: str, id: str, error: Exception) -> None:
        super().__init__(f"data of event {event!r} (id {id!r}) does not decode: {error}")
        self.event = event
        self.id = id


class Event(msgspec.Struct, Generic[T], frozen=True):
    """One event, as a browser's ``EventSource`` dispatches it.

    Attributes:
        data: The data, as text: several ``data`` lines joined with ``"\\n"``.
        event: The event type (``"message"`` when the server sent none).
        id: The last event id in force, sent back as ``Last-Event-ID`` on reconnect.
        retry: The reconnection time (milliseconds) this event set, if it set one.
        value: ``data`` decoded into the source's ``data_type``; ``data`` itself without one.
    """

    data: str
    event: str
    id: str
    retry: int | None
    value: T

    def json(self, type: Any = Any) -> Any:
        """Decode ``data`` as JSON (into ``type`` if given: a msgspec ``Struct``, a dataclass,
        a pydantic model...), as the source's ``data_type`` does."""
        return data_decoder(type)(self.data)


@dataclass(frozen=True)
class Gap:
    """The server said events were missed and cannot be replayed.

    Yielded where the loss shows in the stream: after the events that could be replayed,
    before the live ones. Iteration goes on after it (or, with ``gaps="raise"``, after the
    :class:`GapError` that carries it).

    Attributes:
        reason: Why: ``"invalid"`` (an id the server does not know), ``"epoch"`` (the
            server's history restarted), ``"retention"`` (events expired before they could
            be replayed), ``"overflow"`` (this client fell too far behind), or another
            reason the server gave.
        id: The id the stream resumes after (the gap event's id, else the last one).
        topics: The topics whose events were lost, when the server said.
        source: ``"event"`` (the server's gap event) or ``"header"`` (only the ``SSE-Gap``
            response header arrived: the connection ended before the gap event).
        details: Everything the gap event's data held.
    """

    reason: str
    id: str
    topics: tuple[str, ...] = ()
    source: Literal["event", "header"] = "event"
    details: Mapping[str, Any] = field(default_factory=dict)


def data_decoder(data_type: Any) -> Callable[[str], Any]:
    """The function that decodes an event's data into ``data_type``.

    ``str`` (or ``None``) leaves the text as it is; a pydantic model validates the JSON
    with its own ``model_validate_json``; anything else (a msgspec ``Struct``, a dataclass,
    a ``TypedDict``, ``dict``, ``list[...]``, ``Any``) is decoded by msgspec, the library
    the server encodes with, so a type comes back as the server sent it.
    """
    if data_type is None or data_type is str:
        return same_text
    validate = getattr(data_type, "model_validate_json", None)
    if callable(validate):
        return validate  # type: ignore[no-any-return]
    return msgspec.json.Decoder(data_type).decode


def same_text(text: str) -> str:
    """The decoder of ``str`` data: the text itself."""
    return text
