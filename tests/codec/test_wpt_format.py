"""Parsing situations from the web-platform-tests ``eventsource/format-*`` suite.

Each WPT test serves a body from a small script and checks what a browser's ``EventSource``
dispatches. Here every situation is restated as the exact bytes such a server sends and the
events (with type, last event ID and retry) the decoder must produce. Where a test reconnects,
the same decoder is closed and fed the next response, as a client library would do.

The WPT helper that serves most bodies appends ``"\\n\\n"`` plus a final ``"\\n"`` to the
message, or only the final ``"\\n"`` when the test asks for ``newline=none``; the streams
below include those bytes.

Left out on purpose: the ``format-mime-*`` tests (they are about the ``Content-Type``
response header, which a byte-level decoder never sees) and tests about request headers,
CORS, redirects or reconnection timing.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from litestar_sse.codec._decoder import DecodedEvent, EventDecoder

E = DecodedEvent


@dataclass(frozen=True)
class Scenario:
    """One or more responses read in turn by the same decoder, with the events each yields."""

    responses: list[tuple[bytes, list[DecodedEvent]]]
    retry: int | None = None  # the decoder's reconnection time after the last response
    last_event_id: str = ""  # what a further reconnect would send as Last-Event-ID


def served(message: bytes, *, newline: bool = True) -> bytes:
    """The body the WPT message helper sends for ``message``."""
    return message + (b"\n\n" if newline else b"") + b"\n"


FILLER = b"x" * 2048

SCENARIOS: dict[str, Scenario] = {
    # A BOM is skipped only at the very start; a later one becomes part of the field name,
    # so "\ufeffdata" is an unknown field and event 2 never fires.
    "format-bom": Scenario(
        [(served(b"\xef\xbb\xbfdata:1\n\n\xef\xbb\xbfdata:2\n\ndata:3"), [E("1"), E("3")])]
    ),
    # Two BOMs at the start: only the first is dropped, so the first block is lost.
    "format-bom-2": Scenario(
        [(served(b"\xef\xbb\xbf\xef\xbb\xbfdata:1\n\ndata:2\n\ndata:3"), [E("2"), E("3")])]
    ),
    # Comments of every shape (empty, containing NUL, long, looking like a field) between
    # data lines, with all three kinds of line break; they never end the event.
    "format-comments": Scenario(
        [
            (
                served(
                    b"data:1\r:\x00\n:\r\ndata:2\n:"
                    + FILLER
                    + b"\rdata:3\n:data:fail\r:"
                    + FILLER
                    + b"\ndata:4\n",
                    newline=False,
                ),
                [E("1\n2\n3\n4")],
            )
        ]
    ),
    # The body ends in the middle of an event: it is dropped, and its id never takes effect,
    # so after reconnecting (the server repeats the body) lastEventId is still empty.
    "format-data-before-final-empty-line": Scenario(
        [
            (
                served(b"retry:1000\ndata:test1\n\nid:test\ndata:test2", newline=False),
                [E("test1", retry=1000)],
            ),
            (
                served(b"retry:1000\ndata:test1\n\nid:test\ndata:test2", newline=False),
                [E("test1", retry=1000)],
            ),
        ],
        retry=1000,
    ),
    # "data:" and "data" both add an empty line; two of them give a single "\n".
    "format-field-data": Scenario(
        [(served(b"data:\n\ndata\ndata\n\ndata:test"), [E(""), E("\n"), E("test")])]
    ),
    # An event field whose value is empty (after the one stripped space) means "message".
    "format-field-event-empty": Scenario([(served(b"event: \ndata:data"), [E("data")])]),
    # A custom type applies to its own block only.
    "format-field-event": Scenario(
        [(served(b"event:test\ndata:x\n\ndata:x"), [E("x", "test"), E("x")])]
    ),
    # Non-ASCII id; on reconnect the server echoes Last-Event-ID back without an id field,
    # and the id stays in force.
    "format-field-id": Scenario(
        [
            (
                "id: \u2026\nretry: 200\ndata: hello\n\n".encode(),
                [E("hello", id="\u2026", retry=200)],
            ),
            ("data: \u2026\n\n".encode(), [E("\u2026", id="\u2026")]),
        ],
        retry=200,
        last_event_id="\u2026",
    ),
    # The same over two reconnections.
    "format-field-id-2": Scenario(
        [
            (
                "id: \u2026\nretry: 200\ndata: hello\n\n".encode(),
                [E("hello", id="\u2026", retry=200)],
            ),
            ("data: \u2026\n\n".encode(), [E("\u2026", id="\u2026")]),
            ("data: \u2026\n\n".encode(), [E("\u2026", id="\u2026")]),
        ],
        retry=200,
        last_event_id="\u2026",
    ),
    "format-field-id-3-persists": Scenario(
        [(b"id: 1\ndata: 1\n\ndata:2\n\n", [E("1", id="1"), E("2", id="1")])],
        last_event_id="1",
    ),
    "format-field-id-3-changes-and-persists": Scenario(
        [
            (
                b"id: 1\ndata: 1\n\nid: 2\ndata:2\n\ndata:3\n\n",
                [E("1", id="1"), E("2", id="2"), E("3", id="2")],
            )
        ],
        last_event_id="2",
    ),
    "format-field-id-3-resets": Scenario(
        [
            (
                b"id: 1\ndata: 1\n\nid:\ndata:2\n\ndata:3\n\n",
                [E("1", id="1"), E("2"), E("3")],
            )
        ]
    ),
    # An id containing U+0000 is ignored, so no Last-Event-ID is sent and the server
    # answers the reconnect with the same body. (Very old versions of the test expected the
    # NULs to be kept; the current standard and test ignore the field.)
    "format-field-id-null": Scenario(
        [
            (b"id: \x00\x00\nretry: 200\ndata: hello\n\n", [E("hello", retry=200)]),
            (b"id: \x00\x00\nretry: 200\ndata: hello\n\n", [E("hello", retry=200)]),
        ],
        retry=200,
    ),
    # Field names are exact and case-sensitive; a NUL or a leading space spoils them; one
    # space after the colon is removed; CR, LF and CRLF all end lines.
    "format-field-parsing": Scenario(
        [
            (
                served(
                    b"data:\x00\ndata:  2\rData:1\ndata\x00:2\ndata:1\r\x00data:4\nda-ta:3\r"
                    b"data_5\ndata:3\rdata:\r\n data:32\ndata:4\n",
                    newline=False,
                ),
                [E("\x00\n 2\n1\n3\n\n4")],
            )
        ]
    ),
    # Leading zeros do not mean octal.
    "format-field-retry": Scenario([(served(b"retry:02000\ndata:x"), [E("x", retry=2000)])], 2000),
    # A retry value with a non-digit is ignored; the earlier valid one stays.
    "format-field-retry-bogus": Scenario(
        [(served(b"retry:2000\nretry:1000x\ndata:x"), [E("x", retry=2000)])], 2000
    ),
    # A retry field without a value changes nothing.
    "format-field-retry-empty": Scenario([(served(b"retry\ndata:test"), [E("test")])]),
    # Unknown fields, a line with a leading space, and a bare comment are skipped.
    "format-field-unknown": Scenario(
        [
            (
                served(
                    b"data:test\n data\ndata\nfoobar:xxx\njustsometext\n:thisisacommentyay\n"
                    b"data:test"
                ),
                [E("test\n\ntest")],
            )
        ]
    ),
    # Only a space is stripped, not a tab; a CR ends a line too.
    "format-leading-space": Scenario(
        [(served(b"data:\ttest\rdata: \ndata:test"), [E("\ttest\n\ntest")])]
    ),
    # CRLF, LF and a CR whose LF arrives as the helper's final byte.
    "format-newlines": Scenario(
        [(served(b"data:test\r\ndata\ndata:test\r\n\r", newline=False), [E("test\n\ntest")])]
    ),
    # U+0000 in data is delivered as is and is not an error.
    "format-null-character": Scenario([(served(b"data:\x00\n\n"), [E("\x00")])]),
    # The body is always UTF-8, whatever charset the Content-Type header claims.
    "format-utf-8": Scenario([(served(b"data:ok\xe2\x80\xa6"), [E("ok\u2026")])]),
    # event-data: a body written in small pieces; a block of only a comment and unknown
    # fields (one of them "Data", wrong case) dispatches nothing, "data" alone gives "".
    "event-data": Scenario(
        [
            (
                b"data:msg\ndata:msg\n\n:\nfalsefield:msg\n\nfalsefield:msg\nData:data\n\n"
                b"data\n\ndata:end\n\n",
                [E("msg\nmsg"), E(""), E("end")],
            )
        ]
    ),
}


def _random_splitter(seed: int) -> Callable[[bytes], list[bytes]]:
    def split(body: bytes) -> list[bytes]:
        rng = random.Random(seed)
        cuts = sorted(rng.sample(range(len(body) + 1), k=min(len(body) + 1, 6)))
        return [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]

    return split


CHUNKINGS: dict[str, Callable[[bytes], list[bytes]]] = {
    "whole": lambda body: [body],
    "bytewise": lambda body: [body[i : i + 1] for i in range(len(body))],
    **{f"random{seed}": _random_splitter(seed) for seed in range(3)},
}


@pytest.mark.parametrize("chunking", list(CHUNKINGS))
@pytest.mark.parametrize("scenario", list(SCENARIOS.values()), ids=list(SCENARIOS))
def test_wpt_format(scenario: Scenario, chunking: str) -> None:
    decoder = EventDecoder()
    for index, (body, expected) in enumerate(scenario.responses):
        got: list[DecodedEvent] = []
        for chunk in CHUNKINGS[chunking](body):
            got.extend(decoder.feed(chunk))
        decoder.close()
        assert got == expected, f"response {index}"
    assert decoder.retry == scenario.retry
    assert decoder.last_event_id == scenario.last_event_id
