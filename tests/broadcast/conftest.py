"""Fixtures of the broadcast tests: real redis-server processes, backends, an ASGI harness."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from litestar_sse.broadcast import MemoryBackend
from litestar_sse.broadcast.types import BroadcastBackend, Subscription
from litestar_sse.codec._decoder import DecodedEvent, EventDecoder
from tests.redis_support import RedisProcess, unique_prefix
from tests.sse_wire import http_scope

BackendFactory = Callable[..., BroadcastBackend]


@pytest.fixture(params=["memory", "redis"])
def make_backend(request: pytest.FixtureRequest) -> BackendFactory:
    """Build the backend under test; keyword arguments go to its constructor."""
    if request.param == "memory":
        return MemoryBackend
    server: RedisProcess = request.getfixturevalue("redis_server")

    def redis_backend(**kwargs: Any) -> BroadcastBackend:
        from litestar_sse.broadcast import RedisStreamBackend

        kwargs.setdefault("prefix", unique_prefix())
        return RedisStreamBackend(server.url, **kwargs)

    return redis_backend


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until ``predicate()`` is true (polling), or fail."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


# -- reading events ------------------------------------------------------------------------


class EventReader:
    """Reads a subscription chunk by chunk and decodes the events (as a client would)."""

    def __init__(self, subscription: Subscription) -> None:
        self.subscription = subscription
        self.decoder = EventDecoder()
        self.events: list[DecodedEvent] = []
        self.chunks: list[bytes] = []
        self.ended = False

    async def read_chunk(self, timeout: float = 5.0) -> list[DecodedEvent]:
        """The events of the next chunk; ``[]`` once the subscription ended."""
        try:
            raw = await asyncio.wait_for(self.subscription.__anext__(), timeout)
        except StopAsyncIteration:
            self.ended = True
            return []
        return self.decode(raw)

    def decode(self, raw: Any) -> list[DecodedEvent]:
        """The events of one chunk the subscription yielded (a ``RawEvent``)."""
        chunk = raw.encode()
        self.chunks.append(chunk)
        events = list(self.decoder.feed(chunk))
        self.events.extend(events)
        return events

    async def take(self, count: int, timeout: float = 5.0) -> list[DecodedEvent]:
        """Read whole chunks until at least ``count`` more events arrived."""
        got: list[DecodedEvent] = []
        deadline = asyncio.get_running_loop().time() + timeout
        while len(got) < count:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise TimeoutError(f"got {len(got)} of {count} events: {got}")
            events = await self.read_chunk(remaining)
            if self.ended:
                raise AssertionError(f"subscription ended after {len(got)} of {count} events")
            got.extend(events)
        return got

    async def nothing_for(self, seconds: float) -> None:
        """Assert that no chunk arrives for ``seconds``."""
        task = asyncio.ensure_future(self.subscription.__anext__())
        done, _ = await asyncio.wait({task}, timeout=seconds)
        if done:
            raise AssertionError(f"unexpected chunk: {task.result()!r}")
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


# -- calling an app over ASGI, streaming -----------------------------------------------------


class ASGIStream:
    """One request to an ASGI app whose response is read while it streams.

    ``gate``: when set to an unset :class:`asyncio.Event`, every body send waits for it,
    like a client that stopped reading.
    """

    def __init__(
        self,
        app: Any,
        path: str,
        *,
        query: str = "",
        headers: dict[str, str] | None = None,
        method: str = "GET",
        body: bytes = b"",
    ) -> None:
        scope = http_scope(method=method)
        scope.update(path=path, raw_path=path.encode(), query_string=query.encode())
        scope["headers"] = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        self.scope = scope
        self.app = app
        self.body = body
        self.messages: list[dict[str, Any]] = []
        self.gate: asyncio.Event | None = None
        self.decoder = EventDecoder()
        self.events: list[DecodedEvent] = []
        self._changed = asyncio.Event()
        self._disconnect = asyncio.Event()
        self._body_sent = False
        self.task: asyncio.Task[None] | None = None

    async def _receive(self) -> dict[str, Any]:
        if not self._body_sent:
            self._body_sent = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        await self._disconnect.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: Any) -> None:
        if message["type"] == "http.response.body" and self.gate is not None:
            await self.gate.wait()
        message = dict(message)
        self.messages.append(message)
        if message["type"] == "http.response.body" and message.get("body"):
            self.events.extend(self.decoder.feed(message["body"]))
        self._changed.set()

    async def __aenter__(self) -> ASGIStream:
        self.task = asyncio.get_running_loop().create_task(
            self.app(self.scope, self._receive, self._send)
        )
        await self.wait_for(lambda: bool(self.messages) or self.task_done)
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.disconnect()

    @property
    def task_done(self) -> bool:
        return self.task is not None and self.task.done()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate():
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise TimeoutError(f"condition not met; messages: {self.messages[-3:]}")
            self._changed.clear()
            waiter = asyncio.ensure_future(self._changed.wait())
            watched = {waiter} if self.task is None else {waiter, self.task}
            await asyncio.wait(watched, timeout=min(remaining, 0.05), return_when="FIRST_COMPLETED")
            waiter.cancel()

    async def wait_events(self, count: int, timeout: float = 5.0) -> list[DecodedEvent]:
        await self.wait_for(lambda: len(self.events) >= count, timeout)
        return self.events

    async def disconnect(self) -> None:
        self._disconnect.set()
        if self.gate is not None:
            self.gate.set()
        if self.task is not None:
            await asyncio.wait_for(asyncio.shield(self.task), 5)

    @property
    def status(self) -> int:
        return int(self.messages[0]["status"])

    @property
    def headers(self) -> dict[str, str]:
        return {k.decode(): v.decode() for k, v in self.messages[0]["headers"]}

    @property
    def body_sends(self) -> list[bytes]:
        """Non-empty body chunks, one per ASGI send."""
        return [m["body"] for m in self.messages if m["type"] == "http.response.body" and m["body"]]

    @property
    def ended(self) -> bool:
        last = self.messages[-1] if self.messages else {}
        return last.get("type") == "http.response.body" and not last.get("more_body", False)


@pytest.fixture
async def reader_of() -> AsyncIterator[Callable[[Subscription], EventReader]]:
    """Wrap subscriptions in :class:`EventReader`; closes them at the end of the test."""
    readers: list[EventReader] = []

    def make(subscription: Subscription) -> EventReader:
        reader = EventReader(subscription)
        readers.append(reader)
        return reader

    yield make
    for reader in readers:
        reader.subscription.close()
