"""Encode Server-Sent Events to bytes exactly as WHATWG HTML §9.2 reads them back.

Sans-I/O and free of Litestar: everything here is a pure function of its arguments. The
validation functions are shared by every layer above so that bad field values are refused when
a message or response is constructed, never discovered half-way through a stream.
"""

from __future__ import annotations

from typing import Final

__all__ = (
    "DEFAULT_SEPARATOR",
    "SEPARATORS",
    "check_comment",
    "check_event_id",
    "check_event_type",
    "check_retry",
    "check_separator",
    "encode_comment",
    "encode_data",
    "encode_event",
    "encode_fields",
    "event_id_problem",
    "to_utf8",
)

SEPARATORS: Final[tuple[str, ...]] = ("\r\n", "\n", "\r")
"""The three line endings an event stream may use."""

DEFAULT_SEPARATOR: Final = "\r\n"


def to_utf8(text: str) -> bytes:
    """Encode ``text`` as UTF-8, turning lone surrogates (which UTF-8 cannot carry) into U+FFFD."""
    try:
        return text.encode()
    except UnicodeEncodeError:
        # UTF-16 with surrogatepass round-trips paired surrogates and marks unpaired ones.
        repaired = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        return repaired.encode()


def _shown(value: object) -> str:
    """``repr(value)`` for an error message, shortened: a rejected value may be megabytes."""
    try:
        text = repr(value)
    except ValueError:  # an int past Python's int/str conversion limit
        return f"an {type(value).__name__} too large to print"
    return text if len(text) <= 80 else f"{text[:60]}... ({len(text)} characters)"


def _has_lone_surrogate(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return True
    return False


def check_event_type(value: str, field: str = "event") -> str:
    """Return ``value`` if it can be sent as an ``event`` field, else raise :class:`ValueError`."""
    if not isinstance(value, str):
        raise TypeError(f"SSE {field} must be a str, got {type(value).__name__}")
    if "\r" in value or "\n" in value:
        raise ValueError(f"SSE {field} must not contain CR or LF: {_shown(value)}")
    if _has_lone_surrogate(value):
        raise ValueError(f"SSE {field} must not contain lone surrogates: {_shown(value)}")
    return value


def event_id_problem(value: str) -> str | None:
    """Why ``value`` cannot be an event id, or ``None`` if it can.

    The one rule for ids, used both when an id is sent (:func:`check_event_id`) and when a
    client sends one back as ``Last-Event-ID`` (which is then treated as absent): no CR or LF
    (the rest would become a field of its own), no NUL (a browser ignores such an id), no lone
    surrogate (UTF-8 cannot carry it).
    """
    if "\r" in value or "\n" in value:
        return "must not contain CR or LF"
    if "\x00" in value:
        return "must not contain NUL"
    if _has_lone_surrogate(value):
        return "must not contain lone surrogates"
    return None


def check_event_id(value: str | int, field: str = "id") -> str:
    """Return ``value`` as the text of an ``id`` field, or raise :class:`ValueError`.

    Ints are accepted for compatibility with Litestar and sent in decimal.
    """
    if type(value) is int:
        return str(value)
    if not isinstance(value, str):
        raise TypeError(f"SSE {field} must be a str or int, got {type(value).__name__}")
    problem = event_id_problem(value)
    if problem is not None:
        raise ValueError(f"SSE {field} {problem}: {_shown(value)}")
    return value


MAX_RETRY: Final = 2**63 - 1
"""The largest ``retry`` accepted, in milliseconds (about 292 million years)."""


def check_retry(value: int, field: str = "retry") -> int:
    """Return ``value`` if it is a valid reconnection time in milliseconds, else raise.

    It must be an ``int`` from 0 to :data:`MAX_RETRY`: a larger number means nothing to a
    client, and past 4,300 digits Python could not even write it out.
    """
    if type(value) is not int or value < 0:
        raise ValueError(
            f"SSE {field} must be a non-negative int (milliseconds), got {_shown(value)}"
        )
    if value > MAX_RETRY:
        raise ValueError(f"SSE {field} must be at most 2**63 - 1 milliseconds, got {_shown(value)}")
    return value


def check_comment(value: str, field: str = "comment") -> str:
    """Return ``value`` if it can be sent as comment lines, else raise :class:`TypeError`.

    Any ``str`` can: line breaks start new comment lines and lone surrogates become U+FFFD.
    """
    if not isinstance(value, str):
        raise TypeError(f"SSE {field} must be a str, got {type(value).__name__}")
    return value


def check_separator(sep: str, field: str = "sep") -> str:
    """Return ``sep`` if it is one of :data:`SEPARATORS`, else raise :class:`ValueError`."""
    if sep not in SEPARATORS:
        raise ValueError(f"SSE {field} must be one of '\\r\\n', '\\n' or '\\r', got {_shown(sep)}")
    return sep


def encode_comment(comment: str, sep: bytes) -> bytes:
    """Encode ``comment`` as comment lines (``: text``), one per line of the comment."""
    return _prefix_lines(b": ", to_utf8(comment), sep)


def encode_data(data: str | bytes, sep: bytes) -> bytes:
    """Encode ``data`` as ``data:`` lines; the text is UTF-8 (bytes are taken as UTF-8 already).

    Each line break (CRLF, CR or LF) starts a new ``data:`` line, the one way the protocol
    carries one: a payload of ``n`` line breaks costs ``n`` times the ``data:`` prefix and a
    separator on the wire (at most 8 bytes per byte of input). The work is a few passes over
    the bytes in C, whatever the number of lines.
    """
    return _prefix_lines(b"data: ", to_utf8(data) if isinstance(data, str) else data, sep)


def _prefix_lines(prefix: bytes, text: bytes, sep: bytes) -> bytes:
    """Each line of ``text`` as ``prefix + line + sep``; lines end at CRLF, CR or LF.

    Splitting UTF-8 on CR and LF bytes is safe: they never occur inside a multi-byte sequence.
    """
    # CR and LF as ints: CPython's bytes.__contains__ is several times slower with a bytes one.
    if 13 in text:
        text = text.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    elif 10 not in text:
        return prefix + text + sep
    return prefix + text.replace(b"\n", sep + prefix) + sep


def encode_fields(
    *,
    event: str | None = None,
    id: str | int | None = None,
    retry: int | None = None,
    comment: str | None = None,
    sep: str = DEFAULT_SEPARATOR,
) -> bytes:
    """Validate and encode every field of an event except ``data``, without the final blank line.

    The result is a prefix: followed by :func:`encode_data` and one separator it makes an event.
    """
    sep_bytes = check_separator(sep).encode()
    parts: list[bytes] = []
    if comment is not None:
        parts.append(encode_comment(check_comment(comment), sep_bytes))
    if event is not None:
        parts.append(b"event: " + check_event_type(event).encode() + sep_bytes)
    if id is not None:
        parts.append(b"id: " + check_event_id(id).encode() + sep_bytes)
    if retry is not None:
        parts.append(b"retry: %d" % check_retry(retry) + sep_bytes)
    return b"".join(parts)


def encode_event(
    data: str | bytes | None = None,
    *,
    event: str | None = None,
    id: str | int | None = None,
    retry: int | None = None,
    comment: str | None = None,
    sep: str = DEFAULT_SEPARATOR,
) -> bytes:
    """Encode one event, ending with the blank line that makes a client dispatch it.

    Args:
        data: The event's data. ``""`` sends an event whose data is empty; ``None`` sends no
            ``data`` line, so a client dispatches nothing (useful for ``id``/``retry``-only
            blocks). Line breaks (CR, LF, CRLF) split it into several ``data`` lines, which a
            client joins with LF. With ``None`` and no ``event``, ``id`` or ``retry``, only the
            comment lines are written (nothing without a comment), without the blank line
            that would end an event: some decoders (openai-python, httpx-sse) dispatch an
            empty event on every blank line once they have seen an id.
        event: The event type (``addEventListener`` name). No CR or LF.
        id: The event id, stored by the client as its last event id. No CR, LF or NUL.
        retry: The client's reconnection time in milliseconds, an int >= 0.
        comment: Comment lines, ignored by clients.
        sep: The line ending: ``"\\r\\n"`` (default), ``"\\n"`` or ``"\\r"``.

    Raises:
        ValueError: a field value that the stream cannot carry; the message names the field.
        TypeError: a field of the wrong type; the message names the field.
    """
    if data is not None and not isinstance(data, (str, bytes)):
        raise TypeError(f"SSE data must be str, bytes or None, got {type(data).__name__}")
    prefix = encode_fields(event=event, id=id, retry=retry, comment=comment, sep=sep)
    sep_bytes = sep.encode()
    if data is None:
        if event is None and id is None and retry is None:
            return prefix  # a comment (or nothing): no blank line
        return prefix + sep_bytes
    return prefix + encode_data(data, sep_bytes) + sep_bytes
