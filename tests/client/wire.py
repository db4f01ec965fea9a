"""A scripted HTTP/1.1 server on loopback: each request is answered by a test's own coroutine,
byte for byte, and every request is recorded (headers, body, when it arrived)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field


@dataclass
class Seen:
    """One request as it arrived."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)


Handler = Callable[[Seen, int, asyncio.StreamWriter], Awaitable[None]]
"""Writes the answer to request number ``index`` (0 for the first); the connection is closed
when it returns."""


def head(status: int = 200, *headers: str, chunked: bool = False) -> bytes:
    """A response head: ``text/event-stream`` unless a ``Content-Type`` is given."""
    lines = [f"HTTP/1.1 {status} X"]
    if not any(h.lower().startswith("content-type:") for h in headers):
        lines.append("Content-Type: text/event-stream")
    lines += [*headers, "Connection: close"]
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    elif status in (204, 304) or status < 200:
        pass
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body."""
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


class WireServer:
    """Serves ``handler`` on 127.0.0.1 for as long as the ``async with`` lasts."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[Seen] = []
        self.sent = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aenter__(self) -> WireServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        await self._server.wait_closed()

    def intervals(self) -> list[float]:
        """Seconds between one request and the next."""
        times = [seen.at for seen in self.requests]
        return [b - a for a, b in itertools.pairwise(times)]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)  # type: ignore[arg-type]
        try:
            raw = await reader.readuntil(b"\r\n\r\n")
            start, *lines = raw.decode("latin-1").split("\r\n")
            method, path, _ = start.split(" ", 2)
            headers = {}
            for line in lines:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            body = b""
            if "content-length" in headers:
                body = await reader.readexactly(int(headers["content-length"]))
            seen = Seen(method, path, headers, body)
            index = len(self.requests)
            self.requests.append(seen)
            await self.handler(seen, index, writer)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except asyncio.CancelledError:
            pass  # the server is closing: end quietly (asyncio logs a cancelled handler)
        finally:
            self._tasks.discard(task)  # type: ignore[arg-type]
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def write(writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(data)
    await writer.drain()


async def forever() -> None:
    await asyncio.sleep(3600)


@contextlib.asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[WireServer]:
    async with WireServer(handler) as server:
        yield server


@contextlib.contextmanager
def serving_in_thread(handler: Handler) -> Iterator[WireServer]:
    """:func:`serving` on an event loop of its own thread, for synchronous clients."""
    ready = threading.Event()
    loop = asyncio.new_event_loop()
    stop = loop.create_future()
    holder: list[WireServer] = []

    async def main() -> None:
        async with serving(handler) as server:
            holder.append(server)
            ready.set()
            await stop

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),))
    thread.start()
    try:
        if not ready.wait(10):
            raise RuntimeError("the scripted server did not start")
        yield holder[0]
    finally:
        loop.call_soon_threadsafe(stop.set_result, None)
        thread.join(10)
        loop.close()
