"""A general client: an sse-starlette server (resumed with Last-Event-ID across the ends of
its responses) read by both the async and the sync source."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec
import pytest

from litestar_sse.client import Event, EventSource, SyncEventSource
from tests.client import starlette_app
from tests.e2e.live_server import Server, live_server


class Number(msgspec.Struct):
    n: int


@pytest.fixture
def starlette_server(tmp_path: Path) -> Iterator[Server]:
    with live_server("tests.client.starlette_app:app", tmp_path) as server:
        yield server


def _expected_resumes() -> list[str | None]:
    per, total = starlette_app.PER_CONNECTION, starlette_app.TOTAL
    return [None, *(str(n) for n in range(per, total + per, per) if n <= total), str(total)]


@pytest.mark.anyio
async def test_async_source_reads_sse_starlette_exactly_once_across_reconnects(
    starlette_server: Server,
) -> None:
    async with EventSource(
        starlette_server.url + "/numbers", data_type=Number, min_delay=0.01
    ) as source:
        got = [item async for item in source]
    assert all(isinstance(item, Event) and item.event == "number" for item in got)
    assert [item.value.n for item in got] == list(range(1, starlette_app.TOTAL + 1))  # type: ignore[union-attr]
    async with httpx.AsyncClient() as client:
        log = (await client.get(starlette_server.url + "/log")).json()
    assert log == _expected_resumes()


def test_sync_source_reads_sse_starlette_exactly_once_across_reconnects(
    starlette_server: Server,
) -> None:
    with SyncEventSource(starlette_server.url + "/numbers", min_delay=0.01) as source:
        got = [item for item in source if isinstance(item, Event)]
    assert [item.json(Number).n for item in got] == list(range(1, starlette_app.TOTAL + 1))
    assert [item.id for item in got] == [str(n) for n in range(1, starlette_app.TOTAL + 1)]
    assert httpx.get(starlette_server.url + "/log").json() == _expected_resumes()
