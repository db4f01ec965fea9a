"""The bytes of broadcast events: written once per event, shared by every subscriber.

An event's id is the same for all subscribers (see
:mod:`litestar_sse.broadcast._events.ids`), so the whole event, ``id:`` line included, is
encoded once and fanned out as one ``bytes`` object.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import msgspec

from litestar_sse._message import data_text
from litestar_sse._serialization import json_encoder
from litestar_sse.codec._encoder import check_event_type, check_separator, encode_data, to_utf8

if TYPE_CHECKING:
    from litestar.types import TypeEncodersMap

__all__ = ("GAP_REASONS", "EventFormat", "make_data_encoder")

GAP_REASONS: Final = ("invalid", "epoch", "retention", "overflow")
"""Why a subscriber missed events; the ``reason`` of a gap event and the ``SSE-Gap`` header."""


class EventFormat:
    """Writes broadcast events and gap events with one line separator.

    Args:
        sep: Line separator: ``"\\r\\n"``, ``"\\n"`` or ``"\\r"``.
        gap_event: Event type of gap events.
        unauthorized_event: Event type of the last event of a stream whose authorization
            ended.
    """

    __slots__ = ("_json", "gap_event", "sep", "sep_bytes", "unauthorized", "unauthorized_event")

    def __init__(self, sep: str, gap_event: str, unauthorized_event: str = "unauthorized") -> None:
        self.sep = check_separator(sep)
        self.sep_bytes = sep.encode()
        self.gap_event = check_event_type(gap_event, "gap_event")
        self.unauthorized_event = check_event_type(unauthorized_event, "unauthorized_event")
        self._json = msgspec.json.Encoder()
        head = b"event: " + to_utf8(self.unauthorized_event) + self.sep_bytes
        self.unauthorized: dict[str, bytes] = {
            reason: head + b"data: " + self._json.encode({"reason": reason}) + self.sep_bytes * 2
            for reason in ("expired", "revoked")
        }
        """The last event of a stream whose authorization ended, by reason (encoded once)."""

    @property
    def reserved(self) -> tuple[str, str]:
        """The event types of the events the broadcaster sends by itself: its gap events and
        the last event of a stream whose authorization ended."""
        return (self.gap_event, self.unauthorized_event)

    def check_event_type(self, event: str) -> str:
        """``event`` if a published event may have it: a valid event type, not reserved.

        Raises:
            TypeError, ValueError: not a valid event type (see
                :func:`~litestar_sse.codec._encoder.check_event_type`).
            ValueError: one of :attr:`reserved`: a client that chooses the event types an app
                publishes could forge a gap or the end of its authorization.
        """
        check_event_type(event)
        if event in self.reserved:
            names = " and ".join(repr(name) for name in self.reserved)
            raise ValueError(
                f"The event type {event!r} is reserved: the broadcaster sends {names} events "
                "itself (gap_event, unauthorized_event); publish under another event type, "
                "or give the Broadcaster other gap_event / unauthorized_event names"
            )
        return event

    def event(self, event_id: bytes, event: bytes | None, data: bytes) -> bytes:
        """One complete event: ``event`` (if any), ``id`` and ``data`` lines, blank line.

        The data is copied once (a large event is not copied again per line added around it).
        """
        sep = self.sep_bytes
        parts = [b"id: ", event_id, sep]
        if event is not None:
            parts[:0] = (b"event: ", event, sep)
        if 13 in data or 10 in data:  # CR, LF: several data lines
            parts += (encode_data(data, sep), sep)
        else:
            parts += (b"data: ", data, sep, sep)
        return b"".join(parts)

    def gap(self, reason: str, *, event_id: str | None = None, **details: Any) -> bytes:
        """A gap event: ``data`` is a JSON object with ``reason`` and ``details``.

        Args:
            reason: One of :data:`GAP_REASONS`.
            event_id: The id the client should resume from after this event, if any.
            details: Extra JSON members (``topics``, ``dropped``, ``last_event_id``).
        """
        sep = self.sep_bytes
        data = self._json.encode({"reason": reason, **details})
        head = b"event: " + to_utf8(self.gap_event) + sep
        if event_id is not None:
            head += b"id: " + event_id.encode() + sep
        return head + b"data: " + data + sep + sep


def make_data_encoder(type_encoders: TypeEncodersMap | None = None) -> Callable[[Any], bytes]:
    """Build the function that turns published data into the text of its ``data`` lines.

    ``str`` is sent as text (line breaks become several ``data`` lines), ``bytes`` as UTF-8
    text, ``int`` in decimal; anything else (msgspec Struct, dataclass, dict, list, pydantic
    model, ...) as one line of JSON, with ``type_encoders`` like Litestar's responses.
    """
    json_encode = json_encoder(type_encoders)

    def encode(data: Any) -> bytes:
        if data is None:
            raise TypeError("Cannot publish None: a client dispatches no event without data")
        return data_text(data, json_encode)

    return encode
