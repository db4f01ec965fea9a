"""Every write of a stream runs in its own request's contextvars context, pings included.

Under a real server (uvicorn, and granian), many concurrent pinged streams; a middleware that
sets a ContextVar per request checks it in ``send`` (``tests/e2e/context_app.py``). Pings are
sent from the event loop's timer wheel, outside the request's task: before they ran in the
context of whichever request had armed the wheel (or none), so tracing and log-context
middleware saw the wrong request. A broadcast's events are sent from the hub's pass over its
idle streams, outside the request's task too (``/broadcast``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import anyio
import httpx
import pytest

from tests.e2e.live_server import live_server

STREAMS = 24  # of each kind
READ_FOR = 1.2  # seconds: about 20 pings per idle stream


async def read_for(client: httpx.AsyncClient, path: str, seconds: float) -> int:
    """Read the stream for ``seconds`` (or to its end); return the bytes received."""
    received = 0
    async with client.stream("GET", path) as response:
        assert response.status_code == 200
        with anyio.move_on_after(seconds):
            async for chunk in response.aiter_raw():
                received += len(chunk)
    return received


async def open_streams(url: str) -> None:
    limits = httpx.Limits(max_connections=3 * STREAMS)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=10) as client:
        paths = ["/idle"] * STREAMS + ["/ticking"] * STREAMS + ["/broadcast"] * STREAMS
        received = await asyncio.gather(*(read_for(client, p, READ_FOR) for p in paths))
    assert all(received)


@pytest.mark.parametrize("server", ["uvicorn", "granian"])
def test_pings_and_events_run_in_their_own_requests_context(tmp_path: Path, server: str) -> None:
    with live_server("tests.e2e.context_app:app", tmp_path, server=server) as live:
        asyncio.run(open_streams(live.url))
        report = httpx.get(f"{live.url}/report", timeout=5).json()
    wrong = {kind: n for kind, n in report.items() if "wrong" in kind}
    assert wrong == {}, report
    # Enough of each kind of write to mean something: every idle stream was pinged many
    # times, every ticking stream sent events and pings between them.
    assert report["ping right context"] >= STREAMS * 10, report
    assert report["event right context"] >= STREAMS * 5, report
    assert report["broadcast event right context"] >= STREAMS * 5, report
