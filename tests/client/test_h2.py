"""Closing an EventSource over HTTP/2 (h2c; hypercorn and granian) ends the server's producer
at once (RST_STREAM), while other streams on the same connection go on; httpx alone would
leave it running."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from litestar_sse.client import EventSource, SyncEventSource, _h2
from tests.e2e.live_server import Server
from tests.processes import free_port, start_listening, stop

pytestmark = pytest.mark.anyio


SERVERS = {
    "hypercorn": ["-m", "hypercorn", "tests.client.h2_app:app", "--graceful-timeout", "1"],
    # --http auto: HTTP/1.1, and HTTP/2 with prior knowledge (h2c) on the same port.
    "granian": [
        "-m",
        "granian",
        "--interface",
        "asgi",
        "--http",
        "auto",
        "tests.client.h2_app:app",
    ],
}


@pytest.fixture(scope="module", params=sorted(SERVERS))
def h2_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    port = free_port()
    log = tmp_path_factory.mktemp("h2") / "server.log"
    command = [sys.executable, *SERVERS[request.param]]
    if request.param == "hypercorn":
        command += ["--bind", f"127.0.0.1:{port}"]
    else:
        command += ["--host", "127.0.0.1", "--port", str(port)]
    process = start_listening(command, port, log)
    try:
        yield Server(f"http://127.0.0.1:{port}", "127.0.0.1", port, log)
    finally:
        stop(process)


async def _hold(client: httpx.AsyncClient) -> AsyncIterator[bytes]:
    async with client.stream("GET", "/hold") as response:
        assert response.http_version == "HTTP/2"
        async for chunk in response.aiter_bytes():
            yield chunk


async def _read_and_leave(
    client: httpx.AsyncClient, server: Server, wait: float = 3.0, cancel: bool = False
) -> float:
    """Read an event on a connection another stream holds open, then leave the source (or
    cancel its reader); return how long the server's producer ran on after that."""
    before = server.state("producers")
    holding = _hold(client)
    await holding.__anext__()
    try:
        read = asyncio.Event()

        async def reader() -> None:
            async with EventSource("/ticks", client=client) as source:
                async for _ in source:
                    assert source.response is not None
                    assert source.response.http_version == "HTTP/2"
                    read.set()
                    if not cancel:
                        break

        task = asyncio.ensure_future(reader())
        await asyncio.wait_for(read.wait(), 10)
        if cancel:
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        left = time.time()
        after = await asyncio.to_thread(
            server.wait_for_state,
            "producers",
            lambda state: state["stopped"] > before["stopped"],
            wait,
        )
        if after["stopped"] == before["stopped"]:
            return float("inf")
        # The other stream on the connection is unharmed.
        assert await holding.__anext__()
        return float(after["last_stop"]) - left
    finally:
        await holding.aclose()


async def test_leaving_the_source_resets_the_h2_stream_and_stops_the_producer(
    h2_server: Server,
) -> None:
    async with httpx.AsyncClient(base_url=h2_server.url, http1=False, http2=True) as client:
        ran_on = await _read_and_leave(client, h2_server)
    assert ran_on < 1.0, ran_on


async def test_without_the_reset_httpx_leaves_the_producer_running(
    h2_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The control: what _h2 is for. If httpx ever resets streams itself, this fails, and
    # litestar_sse/client/_h2.py can go.
    async def no_reset(response: httpx.Response) -> bool:
        return False

    monkeypatch.setattr("litestar_sse.client._async.areset_stream", no_reset)
    async with httpx.AsyncClient(base_url=h2_server.url, http1=False, http2=True) as client:
        ran_on = await _read_and_leave(client, h2_server, wait=1.5)
    assert ran_on == float("inf")


async def test_cancelling_the_reader_resets_the_h2_stream(h2_server: Server) -> None:
    async with httpx.AsyncClient(base_url=h2_server.url, http1=False, http2=True) as client:
        ran_on = await _read_and_leave(client, h2_server, cancel=True)
    assert ran_on < 1.0, ran_on


def test_leaving_the_sync_source_resets_the_h2_stream(h2_server: Server) -> None:
    before = h2_server.state("producers")
    with httpx.Client(base_url=h2_server.url, http1=False, http2=True) as client:
        with SyncEventSource("/ticks", client=client) as source:
            next(source)
            assert source.response is not None
            assert source.response.http_version == "HTTP/2"
        left = time.time()
        after = h2_server.wait_for_state(
            "producers", lambda state: state["stopped"] > before["stopped"], 3.0
        )
        assert after["stopped"] > before["stopped"]  # while the connection is still open
        assert float(after["last_stop"]) - left < 1.0


def test_the_reset_is_a_no_op_on_http1_and_on_ended_streams() -> None:
    response = httpx.Response(200, content=b"data: x\n\n")
    assert _h2.reset_stream(response) is False
    assert asyncio.run(_h2.areset_stream(response)) is False
