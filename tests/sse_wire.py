"""Helpers to read what a response put on the wire, with two independent SSE parsers.

Every stream a test checks is decoded by ``litestar_sse.codec._decoder`` and by ``httpx_sse``;
the two must agree, so a bug in either the encoder or our own decoder cannot hide.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, NamedTuple

import httpx
import httpx_sse

from litestar_sse._compat import LITESTAR_3
from litestar_sse.codec._decoder import DecodedComment, DecodedEvent, EventDecoder

SSE_CONTENT_TYPE = "text/event-stream; charset=utf-8"

WITHOUT_APP_LOGGING: dict[str, Any] = {} if LITESTAR_3 else {"logging_config": None}
"""``Litestar(...)`` arguments for an app that configures no logging (Litestar 3 never does):
errors of its streams are logged on the ``litestar_sse`` logger."""


class Ev(NamedTuple):
    """An event as both parsers report it."""

    data: str
    event: str = "message"
    id: str = ""
    retry: int | None = None


def ours(chunks: bytes | Iterable[bytes]) -> list[Ev]:
    """Events dispatched by our decoder, fed chunk by chunk as they were sent."""
    decoder = EventDecoder()
    if isinstance(chunks, bytes):
        chunks = [chunks]
    out = [Ev(e.data, e.event, e.id, e.retry) for chunk in chunks for e in decoder.feed(chunk)]
    decoder.close()
    return out


def theirs(body: bytes) -> list[Ev]:
    """Events as ``httpx_sse`` parses them from a complete body."""
    response = httpx.Response(200, headers={"content-type": SSE_CONTENT_TYPE}, content=body)
    return [Ev(e.data, e.event, e.id, e.retry) for e in httpx_sse.EventSource(response).iter_sse()]


def both(chunks: bytes | Iterable[bytes]) -> list[Ev]:
    """Decode with both parsers, assert they agree, return the events."""
    chunk_list = [chunks] if isinstance(chunks, bytes) else list(chunks)
    mine = ours(chunk_list)
    other = theirs(b"".join(chunk_list))
    assert mine == other, f"decoders disagree:\n ours:   {mine}\n httpx_sse: {other}"
    return mine


def items(chunks: bytes | Iterable[bytes]) -> list[DecodedEvent | DecodedComment]:
    """Events and comments in stream order (our decoder only: httpx_sse drops comments)."""
    decoder = EventDecoder()
    if isinstance(chunks, bytes):
        chunks = [chunks]
    return [x for chunk in chunks for x in decoder.feed_with_comments(chunk)]


def comments(chunks: bytes | Iterable[bytes]) -> list[str]:
    """The text of every comment line."""
    return [x.text for x in items(chunks) if isinstance(x, DecodedComment)]


class Recorder:
    """A fake ASGI ``send`` that records messages, for calling ASGI responses directly."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def __call__(self, message: Any) -> None:
        self.messages.append(dict(message))

    @property
    def starts(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == "http.response.start"]

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == "http.response.body"]

    @property
    def chunks(self) -> list[bytes]:
        """Non-empty body chunks, in order."""
        return [m["body"] for m in self.bodies if m["body"]]

    @property
    def body(self) -> bytes:
        return b"".join(m["body"] for m in self.bodies)

    @property
    def headers(self) -> dict[str, str]:
        (start,) = self.starts
        return {k.decode("latin-1"): v.decode("latin-1") for k, v in start["headers"]}

    @property
    def ended(self) -> bool:
        """True when the last message is the end of the body (more_body False)."""
        last = self.messages[-1] if self.messages else {}
        return last.get("type") == "http.response.body" and not last.get("more_body", False)


def http_scope(*, http_version: str = "1.1", method: str = "GET") -> dict[str, Any]:
    """A minimal HTTP scope, enough for the response classes."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": http_version,
        "method": method,
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "root_path": "",
        "headers": [],
        "client": ("127.0.0.1", 1234),
        "server": ("127.0.0.1", 80),
        "state": {},
    }


class LogCapture(logging.Handler):
    """Collects records; attach to a logger after the app configured logging (which replaces
    root handlers, pytest's caplog included)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def __enter__(self) -> LogCapture:
        logging.getLogger().addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger().removeHandler(self)

    @property
    def errors(self) -> list[logging.LogRecord]:
        return [r for r in self.records if r.levelno >= logging.ERROR]

    @property
    def text(self) -> str:
        formatter = logging.Formatter("%(levelname)s %(name)s %(message)s")
        return "\n".join(formatter.format(r) for r in self.records)
