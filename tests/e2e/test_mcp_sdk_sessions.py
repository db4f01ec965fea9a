"""Sessions kept apart on the official MCP SDK's own server (``tests/e2e/mcp_sdk_app.py``,
one uvicorn): a session that knows nothing but its own ids, and a session whose request ids
are those of another, never read the other's results. The victim is the real SDK client;
the attacker speaks raw HTTP, as an attacker would."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from litestar_sse.codec._decoder import EventDecoder
from tests.e2e.live_server import Server, live_server

pytestmark = pytest.mark.anyio

VERSION = "2025-11-25"
SECRET = "alice's secret result"


@pytest.fixture(scope="module")
def sdk_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with live_server("tests.e2e.mcp_sdk_app:app", tmp_path_factory.mktemp("sdk")) as server:
        yield server


def headers(session_id: str | None = None, **extra: str) -> dict[str, str]:
    out = {"accept": "application/json, text/event-stream", "mcp-protocol-version": VERSION}
    if session_id is not None:
        out["mcp-session-id"] = session_id
    return {**out, **extra}


class Raw:
    """A client speaking the transport by hand: what an attacker controls."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.client = httpx.Client(timeout=10)
        self.session_id: str | None = None

    def post(self, message: dict[str, Any], *, read_until_id: bool = False) -> list[Any]:
        """POST ``message``; the SSE events read until its response (or, with
        ``read_until_id``, until the first event with an id: then the connection is cut)."""
        events: list[Any] = []
        decoder = EventDecoder()
        with self.client.stream(
            "POST", self.url, json=message, headers=headers(self.session_id)
        ) as response:
            assert response.status_code in (200, 202), response.read()
            self.session_id = response.headers.get("mcp-session-id", self.session_id)
            if response.status_code == 202:
                return events
            for chunk in response.iter_bytes():
                for event in decoder.feed(chunk):
                    events.append(event)
                    if read_until_id and event.id:
                        return events
                    if event.data and "method" not in json.loads(event.data):
                        return events
        return events

    def open(self) -> str:
        init = {
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {
                "protocolVersion": VERSION, "capabilities": {},
                "clientInfo": {"name": "mallory", "version": "1"},
            },
        }  # fmt: skip
        events = self.post(init)
        assert self.session_id is not None
        self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return next(event.id for event in events if event.id)

    def resume(self, last_event_id: str, seconds: float = 1.0) -> str:
        """``GET`` with ``Last-Event-ID``: what comes within ``seconds`` (the SDK follows a
        stream live after its replay), as text."""
        received = bytearray()
        deadline = time.monotonic() + seconds
        get_headers = headers(self.session_id, **{"last-event-id": last_event_id})
        get_headers["accept"] = "text/event-stream"
        try:
            with self.client.stream(
                "GET", self.url, headers=get_headers, timeout=httpx.Timeout(seconds)
            ) as response:
                for chunk in response.iter_bytes():
                    received += chunk
                    if SECRET.encode() in received or time.monotonic() > deadline:
                        break
        except httpx.ReadTimeout:
            pass
        return received.decode(errors="replace")

    def close(self) -> None:
        self.client.close()


async def call_as_alice(url: str) -> None:
    with anyio.fail_after(20):
        async with streamable_http_client(url) as (read, write), ClientSession(read, write) as s:
            await s.initialize()
            result = await s.call_tool("echo", {"text": SECRET})
            assert [c.text for c in result.content] == [SECRET]  # type: ignore[union-attr]


async def test_guessed_event_ids_never_reach_another_sessions_results(sdk_server: Server) -> None:
    url = f"{sdk_server.url}/mcp"
    mallory = Raw(url)
    try:
        own_id = await anyio.to_thread.run_sync(mallory.open)
        await call_as_alice(url)
        # Mallory's ids show how ids look: guess the neighbours of her own, and any
        # broadcast id it may be made of.
        guesses = guessed_ids(own_id)
        for guess in guesses:
            received = await anyio.to_thread.run_sync(mallory.resume, guess, 0.5)
            assert SECRET not in received, f"guess {guess!r} read another session's result"
    finally:
        mallory.close()


async def test_the_same_request_id_in_two_sessions_shares_nothing(sdk_server: Server) -> None:
    url = f"{sdk_server.url}/mcp"
    bob = Raw(url)
    try:
        await anyio.to_thread.run_sync(bob.open)
        # Bob starts calls with the request ids Alice's client will use, and loses the
        # connections after the first (priming) event of each: he will resume them.
        primed = {}
        for request_id in range(1, 5):
            call = {
                "jsonrpc": "2.0", "id": request_id, "method": "tools/call",
                "params": {"name": "hold", "arguments": {"seconds": 1}},
            }  # fmt: skip
            events = await anyio.to_thread.run_sync(lambda c=call: bob.post(c, read_until_id=True))
            primed[request_id] = events[-1].id
        await call_as_alice(url)
        for request_id, priming_id in primed.items():
            received = await anyio.to_thread.run_sync(bob.resume, priming_id, 0.5)
            assert SECRET not in received, f"request {request_id} got another session's result"
    finally:
        bob.close()


def guessed_ids(own_id: str) -> list[str]:
    """Ids near ``own_id``: for ``<epoch>-<n>[...]``, ``<epoch>-0`` to ``<epoch>-<n+12>``, bare
    and with whatever follows the position in ``own_id`` kept."""
    epoch, _, rest = own_id.partition("-")
    digits = "".join(c for c in rest[:20] if c.isdigit()) if rest else ""
    position = int(rest.split(".")[0]) if rest.split(".")[0].isdigit() else int(digits or 0)
    tail = rest[len(rest.split(".")[0]) :]
    out = []
    for n in range(position + 13):
        out.append(f"{epoch}-{n}")
        if tail:
            out.append(f"{epoch}-{n}{tail}")
    return out
