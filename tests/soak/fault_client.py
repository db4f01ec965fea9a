"""A cheap event-stream client for the fault tests: one raw asyncio connection per stream.

:class:`EventStream` sends one ``GET`` (with ``Last-Event-ID`` when resuming) and parses what
arrives as it arrives: the response head, the chunked body (and whether its terminator came),
and the events and comments in it. It is written for the app's output (``\\r\\n`` line
endings) and is independent of the library's own decoder. A thousand of them run in one
process without trouble.

Run as a module, it is the client of the network-cut test, inside its own network namespace::

    python -m tests.soak.fault_client URL [URL ...]

It opens every URL, prints ``{"open": URL, "status": ...}`` for each (one JSON line), then reads
until it is killed, printing ``{"closed": URL}`` if a stream ends.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

END_OF_HEAD = b"\r\n\r\n"


@dataclass
class Event:
    """One dispatched event (``id`` is ``None`` when the event had no ``id`` field)."""

    id: str | None
    event: str
    data: str
    retry: int | None


class EventStream:
    """One response of an event stream, read over a raw connection."""

    def __init__(
        self,
        host: str,
        port: int,
        target: str,
        *,
        last_event_id: str | None = None,
        on_event: Callable[[Event], None] | None = None,
    ) -> None:
        self.host, self.port, self.target = host, port, target
        self.last_event_id = last_event_id
        self.on_event = on_event
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = b""
        """The body of a response that is not a stream (an error)."""
        self.events: list[Event] = []
        self.pings: list[float] = []
        """``time.monotonic()`` of every comment received."""
        self.ended = False
        """The chunked body's terminator (``0\\r\\n\\r\\n``) arrived: a clean end."""
        self.closed = False
        """The server closed the connection."""
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._raw = bytearray()
        self._text = bytearray()
        self._chunk_left = 0
        self._chunk_crlf = False
        self._fields: dict[str, str] = {}  # the event being built
        self._data: list[str] = []

    async def open(self, timeout: float = 20.0) -> None:
        """Connect, send the request and read the head (and the body of a non-200)."""
        self._reader, self._writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), timeout
        )
        resume = f"Last-Event-ID: {self.last_event_id}\r\n" if self.last_event_id else ""
        self._writer.write(
            f"GET {self.target} HTTP/1.1\r\nHost: {self.host}\r\n"
            f"Accept: text/event-stream\r\n{resume}\r\n".encode()
        )
        await self._writer.drain()
        raw = bytearray()
        while END_OF_HEAD not in raw:
            data = await asyncio.wait_for(self._reader.read(65536), timeout)
            if not data:
                raise ConnectionError(f"closed before the response head: {bytes(raw)!r}")
            raw += data
        head, _, rest = bytes(raw).partition(END_OF_HEAD)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        self.status = int(status_line.split(" ", 2)[1])
        for line in lines:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        if self.status != 200:
            length = int(self.headers.get("content-length", "0"))
            while len(rest) < length:
                data = await asyncio.wait_for(self._reader.read(65536), timeout)
                if not data:
                    break
                rest += data
            self.body = rest
            self.close()
            return
        self._feed(rest)

    async def read(self) -> bool:
        """Read what arrives next; False once the body ended or the connection closed."""
        assert self._reader is not None
        if self.ended or self.closed:
            return False
        data = await self._reader.read(65536)
        if not data:
            self.closed = True
            return False
        self._feed(data)
        return not self.ended

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    # -- parsing -------------------------------------------------------------------------------

    def _feed(self, data: bytes) -> None:
        raw = self._raw
        raw += data
        while raw and not self.ended:
            if self._chunk_left:
                take = min(self._chunk_left, len(raw))
                self._text += raw[:take]
                del raw[:take]
                self._chunk_left -= take
                self._chunk_crlf = self._chunk_left == 0
            elif self._chunk_crlf:
                if len(raw) < 2:
                    break
                if raw[:2] != b"\r\n":
                    raise ValueError(f"bad chunk end: {bytes(raw[:20])!r}")
                del raw[:2]
                self._chunk_crlf = False
            else:
                line_end = raw.find(b"\r\n")
                if line_end < 0:
                    break
                size = int(raw[:line_end], 16)
                if size == 0:
                    if raw[line_end : line_end + 4] != b"\r\n\r\n":
                        break  # the terminator is incomplete: wait for the rest
                    del raw[: line_end + 4]
                    self.ended = True
                else:
                    del raw[: line_end + 2]
                    self._chunk_left = size
        self._dispatch()

    def _dispatch(self) -> None:
        # Line by line, as a client decodes: a comment line is a ping as soon as it is read
        # (no blank line follows a ping), a blank line dispatches the event being built.
        text = self._text
        while True:
            end = text.find(b"\r\n")
            if end < 0:
                return
            line = bytes(text[:end]).decode()
            del text[: end + 2]
            if line.startswith(":"):
                self.pings.append(time.monotonic())
            elif line:
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "data":
                    self._data.append(value)
                else:
                    self._fields[name] = value
            elif self._data or self._fields:
                self._emit()

    def _emit(self) -> None:
        fields, data = self._fields, self._data
        self._fields, self._data = {}, []
        retry = fields.get("retry")
        event = Event(
            id=fields.get("id"),
            event=fields.get("event", "message"),
            data="\n".join(data),
            retry=int(retry) if retry is not None else None,
        )
        self.events.append(event)
        if self.on_event is not None:
            self.on_event(event)


async def _follow(url: str) -> None:
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    assert parts.hostname is not None
    assert parts.port is not None
    stream = EventStream(parts.hostname, parts.port, target)
    await stream.open()
    print(json.dumps({"open": url, "status": stream.status}), flush=True)
    while await stream.read():
        pass
    print(json.dumps({"closed": url}), flush=True)


async def _main(urls: list[str]) -> None:
    await asyncio.gather(*(_follow(url) for url in urls))
    await asyncio.Event().wait()  # keep every socket open until killed


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1:]))
