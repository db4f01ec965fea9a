"""Incremental, sans-I/O parser for ``text/event-stream`` bodies.

The parser follows the WHATWG HTML Living Standard, section "Interpreting an event stream"
(https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation).
It has no dependencies beyond the standard library, so it can be used by clients, test
helpers and tools that never import Litestar.
"""

from __future__ import annotations

import codecs
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from dataclasses import dataclass
from typing import cast

__all__ = [
    "DEFAULT_MAX_EVENT_LENGTH",
    "DEFAULT_MAX_LINE_LENGTH",
    "DecodeError",
    "DecodedComment",
    "DecodedEvent",
    "EventDecoder",
    "aiter_events",
    "decode_stream",
]

DEFAULT_MAX_LINE_LENGTH = 1_048_576
"""Longest line (in characters) a decoder accepts by default before raising DecodeError."""

DEFAULT_MAX_EVENT_LENGTH = 16 * 1_048_576
"""Longest event data (in characters) a decoder collects by default before raising DecodeError.

Sixteen lines of the default maximum length: far above any event a stream meant for
``EventSource`` carries, yet a bound on what one peer can make a client hold in memory.
"""


@dataclass(frozen=True, slots=True)
class DecodedEvent:
    """An event dispatched by the stream.

    Attributes:
        data: The event data; several ``data`` lines are joined with ``"\\n"``.
        event: The event type, ``"message"`` when the block had no non-empty ``event`` field.
        id: The last event ID in force at dispatch time. It persists across events until a
            later ``id`` field changes it, as ``MessageEvent.lastEventId`` does in browsers.
        retry: The reconnection time (milliseconds) set by a valid ``retry`` field in this
            event's block, or ``None`` if the block had none.
    """

    data: str
    event: str = "message"
    id: str = ""
    retry: int | None = None


@dataclass(frozen=True, slots=True)
class DecodedComment:
    """A comment line (one starting with ``:``).

    Attributes:
        text: The line without its leading ``:`` and without one following space, if any.
    """

    text: str


class DecodeError(ValueError):
    """Raised when the stream exceeds a limit of the decoder.

    A line longer than ``max_line_length``, or an event whose data grows longer than
    ``max_event_length``. The stream is then unusable: drop the connection. The decoder itself
    is reset as by :meth:`EventDecoder.close` and can read the next stream.
    """


class EventDecoder:
    """Incremental event-stream parser fed with raw bytes.

    Feed it chunks exactly as they arrive from the network; chunk boundaries may fall anywhere,
    including inside a UTF-8 sequence, the leading byte order mark or a CRLF pair. Events are
    returned as soon as the blank line that completes them has been received.

    ``last_event_id`` and ``retry`` describe the connection rather than one stream, so they
    survive :meth:`close`: after a reconnect, feed the new response body to the same decoder
    and the IDs keep following the spec.
    """

    __slots__ = (
        "_block_retry",
        "_data",
        "_data_len",
        "_dispatched_id",
        "_event_limit",
        "_event_type",
        "_last_event_id",
        "_max_event_length",
        "_max_line_length",
        "_pending",
        "_pending_len",
        "_retry",
        "_skip_lf",
        "_started",
        "_utf8",
    )

    def __init__(
        self,
        *,
        max_line_length: int | None = DEFAULT_MAX_LINE_LENGTH,
        max_event_length: int | None = DEFAULT_MAX_EVENT_LENGTH,
    ) -> None:
        """Create a decoder.

        Args:
            max_line_length: Longest accepted line, in characters, excluding the line break.
                ``None`` disables the limit. The limit protects against a peer that never
                sends a line break and would otherwise make the decoder buffer without bound.
            max_event_length: Longest accepted event data, in characters: the length of
                :attr:`DecodedEvent.data`, the ``"\\n"`` joining its lines included. It is
                checked as each ``data`` line arrives, so a peer that sends ``data`` lines
                and never the blank line cannot make the decoder collect them without bound
                (which ``max_line_length`` alone does not prevent). ``None`` disables it.
        """
        if max_line_length is not None and max_line_length < 0:
            raise ValueError("max_line_length must be None or a non-negative integer")
        if max_event_length is not None and max_event_length < 0:
            raise ValueError("max_event_length must be None or a non-negative integer")
        self._max_line_length = max_line_length
        self._max_event_length = max_event_length
        # Compared with the running sum of (line length + 1) over the event's data lines,
        # which is one more than the length of the joined data.
        self._event_limit = None if max_event_length is None else max_event_length + 1
        self._last_event_id = ""
        # The spec's "last event ID string": the buffer's value at the most recent dispatch.
        self._dispatched_id = ""
        self._retry: int | None = None
        self._reset_stream()

    def _reset_stream(self) -> None:
        # An ``id`` field of an event that never completed must not leak into the next stream:
        # a reconnect would then claim an event the client never received.
        self._last_event_id = self._dispatched_id
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._started = False
        # A CR ended the previous chunk: an LF at the start of the next one belongs to it.
        self._skip_lf = False
        # The incomplete line is kept as pieces so byte-by-byte feeding stays linear.
        self._pending: list[str] = []
        self._pending_len = 0
        self._data: list[str] = []
        self._data_len = 0
        self._event_type = ""
        self._block_retry: int | None = None

    @property
    def last_event_id(self) -> str:
        """The last event ID buffer.

        Mid-stream it may already hold the ID of an event whose blank line has not arrived.
        After :meth:`close` it is the ID in force at the last dispatch, which is the value a
        reconnecting client sends as ``Last-Event-ID``.
        """
        return self._last_event_id

    @property
    def retry(self) -> int | None:
        """The reconnection time from the most recent valid ``retry`` field, if any."""
        return self._retry

    def feed(self, chunk: bytes) -> list[DecodedEvent]:
        """Parse a chunk of the stream.

        Args:
            chunk: The next bytes of the response body.

        Returns:
            The events completed by this chunk, in stream order.

        Raises:
            DecodeError: A line is longer than ``max_line_length``, or an event's data longer
                than ``max_event_length``. Nothing from this chunk is dispatched and the
                decoder is reset as by :meth:`close`: ``last_event_id`` is the one in force at
                the last dispatch before this chunk, ``retry`` the one before this chunk.
        """
        out: list[DecodedEvent | DecodedComment] = []
        self._feed(chunk, out, False)
        # With comments off only events are ever appended.
        return cast("list[DecodedEvent]", out)

    def feed_with_comments(self, chunk: bytes) -> list[DecodedEvent | DecodedComment]:
        """Like :meth:`feed`, but also return comment lines, interleaved in stream order.

        Args:
            chunk: The next bytes of the response body.

        Returns:
            Events and comments completed by this chunk, in stream order.

        Raises:
            DecodeError: As for :meth:`feed`.
        """
        out: list[DecodedEvent | DecodedComment] = []
        self._feed(chunk, out, True)
        return out

    def close(self) -> None:
        """Signal the end of the current stream.

        As the spec requires, an event whose blank line has not arrived yet, and any
        unterminated line, are discarded; ``last_event_id`` returns to the ID in force at the
        last dispatch. The decoder is then ready for the next stream (for example after
        reconnecting): a new leading byte order mark is accepted, and ``last_event_id`` and
        ``retry`` carry over.
        """
        self._reset_stream()

    def _check_lengths(self, lines: list[str], tail: str) -> None:
        limit = self._max_line_length
        if limit is None:
            return
        if lines:
            longest = max(self._pending_len + len(lines[0]), len(tail), max(map(len, lines)))
        else:
            longest = self._pending_len + len(tail)
        if longest > limit:
            self._reset_stream()
            raise DecodeError(f"event stream line exceeds max_line_length of {limit} characters")

    def _feed(self, chunk: bytes, out: list[DecodedEvent | DecodedComment], comments: bool) -> None:
        text = self._utf8.decode(chunk)
        if not text:
            return
        if not self._started:
            self._started = True
            if text[0] == "\ufeff":
                text = text[1:]
                if not text:
                    return
        if self._skip_lf:
            self._skip_lf = False
            if text[0] == "\n":
                text = text[1:]
                if not text:
                    return
        if "\r" in text:
            # A trailing CR ends its line now; remember it so a following LF is not read as
            # a second (blank) line, which would dispatch an event early.
            self._skip_lf = text[-1] == "\r"
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        lines = text.split("\n")
        tail = lines.pop()
        # Validate before touching any state so a failing chunk is all-or-nothing.
        self._check_lengths(lines, tail)
        if lines:
            if self._pending:
                self._pending.append(lines[0])
                lines[0] = "".join(self._pending)
                self._pending = []
                self._pending_len = 0
            # Restored if an event grows too long half-way through the chunk.
            dispatched_id, retry = self._dispatched_id, self._retry
            try:
                self._process_lines(lines, out, comments)
            except _EventTooLongError:
                self._dispatched_id, self._retry = dispatched_id, retry
                self._reset_stream()
                raise DecodeError(
                    f"event data exceeds max_event_length of {self._max_event_length} characters"
                ) from None
        if tail:
            self._pending.append(tail)
            self._pending_len += len(tail)

    def _process_lines(
        self, lines: list[str], out: list[DecodedEvent | DecodedComment], comments: bool
    ) -> None:
        data = self._data
        size, limit = self._data_len, self._event_limit
        for line in lines:
            if not line:
                # Blank line: dispatch, even when no event results (an ``id`` alone still
                # moves the last event ID).
                self._dispatched_id = self._last_event_id
                if data:
                    out.append(
                        DecodedEvent(
                            "\n".join(data),
                            self._event_type or "message",
                            self._last_event_id,
                            self._block_retry,
                        )
                    )
                    data = self._data = []
                    size = 0
                self._event_type = ""
                self._block_retry = None
                continue
            if line[0] == ":":
                if comments:
                    text = line[1:]
                    out.append(DecodedComment(text[1:] if text[:1] == " " else text))
                continue
            name, colon, value = line.partition(":")
            if colon and value[:1] == " ":
                value = value[1:]
            if name == "data":
                data.append(value)
                if limit is not None:
                    size += len(value) + 1
                    if size > limit:
                        raise _EventTooLongError
            elif name == "event":
                self._event_type = value
            elif name == "id":
                if "\0" not in value:
                    self._last_event_id = value
            elif name == "retry":
                retry = _parse_retry(value)
                if retry is not None:
                    self._retry = self._block_retry = retry
        self._data_len = size


class _EventTooLongError(Exception):
    """Internal: an event's data passed ``max_event_length`` (becomes a DecodeError)."""


def _parse_retry(value: str) -> int | None:
    # str.isdigit alone would accept non-ASCII digits such as "²" or Arabic-Indic numerals.
    if not (value.isascii() and value.isdigit()):
        return None
    try:
        # Zero padding is legal and must not count towards Python's int/str digit limit.
        return int(value.lstrip("0") or "0")
    except ValueError:
        # Thousands of significant digits: past Python's conversion limit. No usable
        # reconnection time is that long, so treat it like any other bogus value.
        return None


def decode_stream(
    chunks: Iterable[bytes] | bytes,
    *,
    max_line_length: int | None = DEFAULT_MAX_LINE_LENGTH,
    max_event_length: int | None = DEFAULT_MAX_EVENT_LENGTH,
) -> list[DecodedEvent]:
    """Decode a complete stream held in memory.

    Args:
        chunks: The whole body as one bytes object, or an iterable of chunks.
        max_line_length: Passed to :class:`EventDecoder`.
        max_event_length: Passed to :class:`EventDecoder`.

    Returns:
        Every dispatched event. A trailing event without its blank line is discarded.

    Raises:
        DecodeError: The stream exceeds one of the limits.
    """
    decoder = EventDecoder(max_line_length=max_line_length, max_event_length=max_event_length)
    if isinstance(chunks, (bytes, bytearray, memoryview)):
        chunks = (bytes(chunks),)
    events: list[DecodedEvent] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    decoder.close()
    return events


async def aiter_events(
    chunks: AsyncIterable[bytes],
    *,
    max_line_length: int | None = DEFAULT_MAX_LINE_LENGTH,
    max_event_length: int | None = DEFAULT_MAX_EVENT_LENGTH,
) -> AsyncIterator[DecodedEvent]:
    """Yield events from an asynchronous byte stream, such as ``httpx``'s ``aiter_bytes()``.

    Args:
        chunks: The response body as it arrives.
        max_line_length: Passed to :class:`EventDecoder`.
        max_event_length: Passed to :class:`EventDecoder`.

    Yields:
        Each event as soon as its blank line has been received.

    Raises:
        DecodeError: The stream exceeds one of the limits.
    """
    decoder = EventDecoder(max_line_length=max_line_length, max_event_length=max_event_length)
    async for chunk in chunks:
        for event in decoder.feed(chunk):
            yield event
    decoder.close()
