"""Broadcast events as values: what reading history and typed subscriptions yield.

A subscription sends events as the bytes a client reads. Code on the server (an event store, a
bridge to another protocol, a test) often wants them as values instead: which topic, which id,
what event type and what data. This module holds those values, the page a backend returns for
one read of history, how an event becomes a value from the parts it is encoded from
(:func:`message_value`, as live events reach typed subscriptions), and the parser that turns
the bytes of :meth:`~litestar_sse.broadcast._events.format.EventFormat.event` back into them
(for history kept as bytes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, TypeAlias, Union

from litestar_sse.broadcast._events.ids import (
    parse_memory_position,
    parse_redis_position,
    split_event_id,
)

__all__ = (
    "AuthorizationEnded",
    "BacklogEnd",
    "BroadcastMessage",
    "Gap",
    "HistoryItem",
    "HistoryPage",
    "MessageItem",
    "event_position",
    "message_value",
    "parse_event_block",
)


@dataclass(frozen=True, slots=True)
class BroadcastMessage:
    """One published event, as a value.

    Attributes:
        topic: The topic it was published to.
        id: Its id, as clients see it (``<epoch>-<position>``).
        event: Its event type, or ``None`` if it was published without one.
        data: Its data as a client receives it: the text of its ``data`` lines, joined with
            ``"\\n"`` (so ``"\\r\\n"`` in published text arrives as ``"\\n"``).
    """

    topic: str
    id: str
    event: str | None
    data: str


@dataclass(frozen=True, slots=True)
class Gap:
    """Events that were missed for good, where they would have been.

    Attributes:
        reason: ``"invalid"`` (the id to read after is not one of ours), ``"epoch"`` (it is
            from another history, or the history was lost while reading), ``"retention"``
            (the history of ``topics`` no longer reaches back to it) or ``"overflow"`` (a
            slow reader skipped ``dropped`` live events, under the ``drop_oldest`` policy).
        topics: The topics whose events are missing (empty for ``"overflow"``).
        dropped: How many events were skipped (``"overflow"`` only; else 0).
    """

    reason: str
    topics: tuple[str, ...] = ()
    dropped: int = 0


@dataclass(frozen=True, slots=True)
class BacklogEnd:
    """Marks the end of the history a typed subscription replays: what follows is live.

    Attributes:
        last_event_id: The id to resume from to miss nothing that comes after this marker:
            the newest replayed event's, or where the subscription started if it replayed
            none.
    """

    last_event_id: str


@dataclass(frozen=True, slots=True)
class AuthorizationEnded:
    """The last item of a typed subscription whose authorization ended: nothing follows.

    The value counterpart of the ``unauthorized_event`` a stream ends with. Events published
    after the end (or not yet taken when it came) are not yielded.

    Attributes:
        reason: ``"expired"`` (the :class:`~litestar_sse.broadcast.Authorization`'s
            ``expires_at`` passed) or ``"revoked"`` (a re-check refused it, raised, or did
            not answer within ``authorize_timeout``).
    """

    reason: str


HistoryItem: TypeAlias = Union[BroadcastMessage, Gap]  # noqa: UP007
"""What :meth:`~litestar_sse.broadcast.Broadcaster.history` yields."""

MessageItem: TypeAlias = Union[BroadcastMessage, Gap, BacklogEnd, AuthorizationEnded]  # noqa: UP007
"""What a :class:`~litestar_sse.broadcast.types.MessageSubscription` yields."""


@dataclass(frozen=True)
class HistoryPage:
    """One read of history from a backend (see ``BroadcastBackend.read_history``).

    Attributes:
        messages: The events read, in position order.
        more: ``True`` when events up to the bound were left for another read (after the
            last of ``messages``).
        gap: Why events of ``gap_topics`` are missing, or ``None``. ``"invalid"`` or
            ``"epoch"`` apply to every topic, and then ``messages`` is empty.
        gap_topics: The topics whose events are missing.
    """

    messages: list[BroadcastMessage] = field(default_factory=list)
    more: bool = False
    gap: str | None = None
    gap_topics: tuple[str, ...] = ()


def event_position(event_id: str) -> tuple[str, int] | None:
    """``(epoch, position)`` of a broadcast id of either backend, or ``None``.

    In-memory ids end in a decimal sequence number, Redis-backed ones in a stream id
    (``ms-n``); the two cannot be mistaken for each other.
    """
    parts = split_event_id(event_id)
    if parts is None:
        return None
    epoch, text = parts
    position = parse_redis_position(text) if "-" in text else parse_memory_position(text)
    return None if position is None else (epoch, position)


def message_value(
    topic: str, event_id: bytes, event: bytes | None, data: bytes
) -> BroadcastMessage:
    """The value of the event that ``EventFormat.event(event_id, event, data)`` encodes, made
    from the same parts (what parsing those bytes back gives, without the bytes): its data's
    line breaks (CRLF, CR, LF) each become ``"\\n"``, as a client reads several ``data`` lines.
    """
    text = data.decode()
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return BroadcastMessage(
        topic, event_id.decode(), None if event is None else event.decode(), text
    )


_ID: Final = b"id: "
_EVENT: Final = b"event: "
_DATA: Final = b"data: "


def parse_event_block(block: bytes, sep: bytes) -> tuple[str | None, str | None, str]:
    """``(event, id, data)`` of one event block written by ``EventFormat`` (the inverse).

    ``id`` is ``None`` for a block without an ``id`` line (an overflow gap event).
    """
    event: str | None = None
    event_id: str | None = None
    data: list[str] = []
    for line in block.split(sep):
        if line.startswith(_DATA):
            data.append(line[len(_DATA) :].decode())
        elif line.startswith(_ID):
            event_id = line[len(_ID) :].decode()
        elif line.startswith(_EVENT):
            event = line[len(_EVENT) :].decode()
    return event, event_id, "\n".join(data)
