"""Typed data (msgspec, dataclass, pydantic), the synchronous source, and the import rule."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
from collections.abc import Iterator

import msgspec
import pydantic
import pytest

from litestar_sse.client import DataDecodeError, Event, EventSource, SyncEventSource
from tests.client.wire import Seen, chunk, head, serving, serving_in_thread, write


class Point(msgspec.Struct):
    x: int
    y: int


@dataclasses.dataclass
class PointDC:
    x: int
    y: int


class PointModel(pydantic.BaseModel):
    x: int
    y: int


BODY = b'data: {"x":1,"y":2}\n\ndata: {"x":"bad"}\n\ndata: {"x":3,"y":4}\n\n'


async def _answer(seen: Seen, index: int, writer: asyncio.StreamWriter) -> None:
    if index == 0:
        await write(writer, head() + BODY)
    else:
        await write(writer, head(204))


@pytest.mark.anyio
@pytest.mark.parametrize("data_type", [Point, PointDC, PointModel])
async def test_data_decodes_into_the_type_asked_and_a_bad_event_does_not_end_the_source(
    data_type: type,
) -> None:
    async with (
        serving(_answer) as server,
        EventSource(server.url, data_type=data_type, retry=0.01, min_delay=0.01) as source,
    ):
        first = await source.__anext__()
        with pytest.raises(DataDecodeError, match="does not decode"):
            await source.__anext__()
        last = [item async for item in source]
    assert isinstance(first, Event)
    assert first.value == data_type(x=1, y=2)
    assert first.data == '{"x":1,"y":2}'
    assert [item.value for item in last] == [data_type(x=3, y=4)]  # type: ignore[union-attr]


async def _sync_answer(seen: Seen, index: int, writer: asyncio.StreamWriter) -> None:
    if index == 0:
        assert "last-event-id" not in seen.headers
        await write(writer, head(chunked=True) + chunk(b"retry: 50\nid: 1\ndata: a\n\nid: 2\n"))
    elif index == 1:
        assert seen.headers["last-event-id"] == "1"
        await write(writer, head() + b'id: 3\ndata: {"x":5,"y":6}\n\n')
    else:
        await write(writer, head(204))


@pytest.fixture
def thread_server() -> Iterator[str]:
    with serving_in_thread(_sync_answer) as server:
        yield server.url


def test_the_sync_source_reconnects_and_resumes_as_the_async_one(thread_server: str) -> None:
    with SyncEventSource(thread_server, min_delay=0.01) as source:
        items = list(source)
    assert [(item.id, item.data) for item in items] == [  # type: ignore[union-attr]
        ("1", "a"),
        ("3", '{"x":5,"y":6}'),
    ]
    assert source.last_event_id == "3"


def test_import_litestar_sse_does_not_import_httpx() -> None:
    code = (
        "import sys, litestar_sse, litestar_sse.codec, litestar_sse.broadcast;"
        "litestar_sse.ServerSentEvent; litestar_sse.broadcast.Broadcaster;"
        "assert 'httpx' not in sys.modules, 'httpx imported';"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_client_loads_neither_litestar_nor_the_server_layers() -> None:
    code = (
        "import sys, litestar_sse.client;"
        "assert 'httpx' in sys.modules;"
        "assert 'litestar' not in sys.modules, 'litestar imported';"
        "assert not [m for m in sys.modules if m.startswith(('litestar_sse.asgi', "
        "'litestar_sse._response', 'litestar_sse.broadcast', 'litestar_sse._plugin'))]"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_without_httpx_the_client_names_the_extra() -> None:
    code = "import sys; sys.modules['httpx'] = None; import litestar_sse.client"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 1
    assert "pip install 'litestar-sse[client]'" in done.stderr
