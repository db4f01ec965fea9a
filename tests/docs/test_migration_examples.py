"""The code samples of the migration guides (``docs/examples/migrate_*``) do what they say."""

from __future__ import annotations

import asyncio

from litestar.testing import TestClient

from litestar_sse.codec import DecodedEvent, decode_stream
from tests.docs.test_examples import load


def test_data_sender_callable_becomes_a_task_feeding_the_generator() -> None:
    module = load("migrate_sse_starlette_sender")
    with TestClient(module.app) as client:
        response = client.get("/jobs/progress")
    assert decode_stream(response.content) == [
        DecodedEvent(str(percent), "progress") for percent in (0, 50, 100)
    ]


def test_the_sender_stops_with_the_stream() -> None:
    module = load("migrate_sse_starlette_sender")

    async def main() -> bool:
        gen = module.progress.fn()  # the handler's generator, as the plugin runs it
        stream = await gen if asyncio.iscoroutine(gen) else gen
        assert (await stream.__anext__()).data == 0
        tasks = asyncio.all_tasks() - {asyncio.current_task()}
        await stream.aclose()  # what a disconnect does
        await asyncio.sleep(0)
        return all(task.cancelled() or task.done() for task in tasks)

    assert asyncio.run(main())


def test_shutdown_event_is_the_apps_closing_message() -> None:
    module = load("migrate_sse_starlette_sender")
    assert module.config.shutdown_event.encode() == (
        b"event: shutdown\r\nretry: 5000\r\ndata: \r\n\r\n"
    )
