"""What both test stream classes share: the response read so far, decoded into events."""

from __future__ import annotations

import zlib
from collections import deque
from typing import TYPE_CHECKING, Any, Final

import httpx

from litestar_sse.codec._decoder import DecodedComment, DecodedEvent, EventDecoder
from litestar_sse.testing._connection import END

if TYPE_CHECKING:
    from anyio.from_thread import BlockingPortal

    from litestar_sse.testing._connection import AppConnection

__all__ = ("StreamReader",)

_WBITS: Final = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


class StreamReader:
    """What both stream classes share: the decoder and what was read so far."""

    # A dict: autodoc shows each public slot with its text, on both stream classes.
    __slots__ = {
        "_connection": None,
        "_decoder": None,
        "_inflate": None,
        "_pending": None,
        "_portal": None,
        "body": "Every body byte received so far (inflated, for a gzip or deflate response).",
        "comments": "The text of every comment line (``: ping`` ...) received so far, in order.",
        "ended": "True once the app ended the body.",
        "headers": "The response headers.",
        "status_code": "The response status.",
        "timeout": "Seconds to wait for each event (or the end); ``None`` waits forever.",
    }

    def __init__(
        self,
        portal: BlockingPortal | None,
        connection: AppConnection,
        timeout: float | None,
        max_line_length: int | None,
        max_event_length: int | None,
    ) -> None:
        self._portal = portal
        self._connection = connection
        self.timeout = timeout
        self.status_code = 0
        self.headers = httpx.Headers()
        self.body = bytearray()
        self.comments: list[str] = []
        self.ended = False
        self._decoder = EventDecoder(
            max_line_length=max_line_length, max_event_length=max_event_length
        )
        self._inflate: Any = None
        self._pending: deque[DecodedEvent | DecodedComment] = deque()

    @property
    def last_event_id(self) -> str:
        """The last event id, as a browser would send it back when reconnecting."""
        return self._decoder.last_event_id

    def _handle(self, message: Any) -> None:
        if message is END:
            if not self.status_code:
                raise RuntimeError("The app returned without starting a response")
            self._end()
            return
        kind = message["type"]
        if kind == "http.response.start":
            self.status_code = message["status"]
            self.headers = httpx.Headers(
                [
                    (name.decode("latin-1"), value.decode("latin-1"))
                    for name, value in message["headers"]
                ]
            )
            coding = self.headers.get("content-encoding", "").strip().lower()
            if coding in _WBITS:
                # Litestar's compression middleware flushes per chunk: inflate as it comes.
                self._inflate = zlib.decompressobj(_WBITS[coding])
        elif kind == "http.response.body":
            chunk = message.get("body", b"")
            if chunk and self._inflate is not None:
                chunk = self._inflate.decompress(chunk)
            if chunk:
                self.body += chunk
                for item in self._decoder.feed_with_comments(chunk):
                    if isinstance(item, DecodedComment):
                        self.comments.append(item.text)
                    self._pending.append(item)
            if not message.get("more_body", False):
                self._end()

    def _pop(self, events_only: bool) -> DecodedEvent | DecodedComment | None:
        pending = self._pending
        while pending:
            item = pending.popleft()
            if not events_only or isinstance(item, DecodedEvent):
                return item
        return None

    def _end(self) -> None:
        if not self.ended:
            self.ended = True
            self._decoder.close()
