"""Redis away: one warning per outage on the library's logger (which backend, which Redis,
the cause, never the password), one when it is back, a 503 that names nothing, and a choice
to fail at startup."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from litestar import Litestar, Request, get, post
from litestar.params import FromPath
from litestar.testing import AsyncTestClient

from litestar_sse import ServerSentEvent
from litestar_sse.broadcast import Broadcaster, RedisStreamBackend
from litestar_sse.broadcast.errors import BackendUnavailableError
from tests.processes import free_port
from tests.redis_support import RedisProcess, unique_prefix

pytestmark = pytest.mark.anyio

LOGGER = "litestar_sse.broadcast"
PASSWORD = "s3cr3t-pa55"


def closed_port() -> int:
    """A loopback port nothing listens on (checked)."""
    port = free_port()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    return port


class Lines(logging.Handler):
    """The records of the library's broadcast logger, kept whatever the app does to the
    root logger's handlers (Litestar 2 replaces them, pytest's caplog included)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    @property
    def text(self) -> str:
        return "\n".join(record.getMessage() for record in self.records)


@pytest.fixture
def caplog() -> Iterator[Lines]:  # every record of the library's logger, from DEBUG on
    logger = logging.getLogger(LOGGER)
    lines, level = Lines(), logger.level
    logger.addHandler(lines)
    logger.setLevel(logging.DEBUG)
    try:
        yield lines
    finally:
        logger.removeHandler(lines)
        logger.setLevel(level)


def outage_lines(caplog: Lines) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name.startswith("litestar_sse") and record.levelno >= logging.WARNING
    ]


async def wait_for_lines(caplog: Lines, count: int) -> list[str]:
    deadline = asyncio.get_running_loop().time() + 20
    while len(outage_lines(caplog)) < count:
        assert asyncio.get_running_loop().time() < deadline, outage_lines(caplog)
        await asyncio.sleep(0.02)
    return outage_lines(caplog)


async def publish_once_redis_answers(broadcaster: Broadcaster) -> None:
    """Publish ``"after"`` to ``t``, retrying (for up to 20 s) while Redis does not answer."""
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        try:
            await broadcaster.publish("t", "after")
            return
        except BackendUnavailableError:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.05)


def make_app(broadcaster: Broadcaster) -> Litestar:
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with broadcaster:
            yield

    @get("/events")
    async def events(request: Request[Any, Any, Any]) -> ServerSentEvent:
        return await broadcaster.subscribe("t", connection=request)

    @post("/publish/{topic:str}")
    async def publish(topic: FromPath[str]) -> dict[str, str]:
        return {"id": await broadcaster.publish(topic, "x")}

    return Litestar([events, publish], lifespan=[lifespan])


async def test_redis_on_a_closed_port_logs_one_warning_and_answers_503_naming_nothing(
    caplog: Lines,
) -> None:
    # It started with no warning, answered 503, and logged nothing, even at DEBUG.
    port = closed_port()
    url = f"redis://:{PASSWORD}@127.0.0.1:{port}/0"
    backend = RedisStreamBackend(url, watch_timeout=1, publish_timeout=1)
    async with AsyncTestClient(make_app(Broadcaster(backend))) as client:
        [line] = await wait_for_lines(caplog, 1)  # at startup: the reader's first round
        assert line.startswith(f"RedisStreamBackend: Redis at redis://127.0.0.1:{port}/0 is")
        assert "unavailable (ConnectionError: " in line
        published = await client.post("/publish/t")
        subscribed = await client.get("/events")
        for response in (published, subscribed):
            assert response.status_code == 503
            assert str(port) not in response.text
            assert PASSWORD not in response.text
        assert published.json()["detail"] == "Redis is unavailable: not published"
        await asyncio.sleep(0.5)  # the reader retries meanwhile: no more lines
    lines = outage_lines(caplog)
    assert len(lines) == 1, lines
    assert PASSWORD not in caplog.text


async def test_require_at_startup_fails_the_app_when_redis_is_away(
    caplog: Lines,
) -> None:
    port = closed_port()
    url = f"redis://user:{PASSWORD}@127.0.0.1:{port}/0"
    backend = RedisStreamBackend(url, require_at_startup=True, watch_timeout=1)
    broadcaster = Broadcaster(backend)
    with pytest.raises(BackendUnavailableError) as refused:
        await broadcaster.start()
    message = str(refused.value.detail)
    assert f"Redis at redis://127.0.0.1:{port}/0 is unavailable at startup" in message
    assert "require_at_startup=True" in message
    assert PASSWORD not in message
    assert PASSWORD not in caplog.text
    failed: BaseException | None = None
    try:  # and the app does not start either (the error comes in an exception group)
        async with AsyncTestClient(make_app(Broadcaster(backend))):
            pass
    except BaseException as exc:
        failed = exc
    assert failed is not None
    assert any(
        isinstance(error, BackendUnavailableError) and "at startup" in str(error.detail)
        for error in leaves(failed)
    ), failed


def leaves(error: BaseException) -> list[BaseException]:
    """The errors of an exception group, and their causes (or ``error`` itself)."""
    found = [error]
    for inner in getattr(error, "exceptions", ()):
        found += leaves(inner)
    return found


async def test_require_at_startup_starts_when_redis_answers(redis_server: RedisProcess) -> None:
    backend = RedisStreamBackend(redis_server.url, prefix=unique_prefix(), require_at_startup=True)
    async with Broadcaster(backend) as broadcaster:
        assert await broadcaster.publish("t", "x")


def test_require_at_startup_is_a_bool() -> None:
    with pytest.raises(TypeError, match="require_at_startup"):
        RedisStreamBackend("redis://127.0.0.1:1/0", require_at_startup="yes")  # type: ignore[arg-type]


async def test_a_stopped_then_restarted_redis_logs_one_line_each_way(
    redis_process: Callable[..., RedisProcess], caplog: Lines
) -> None:
    server = redis_process()
    backend = RedisStreamBackend(
        server.url, prefix=unique_prefix(), publish_timeout=0.5, watch_timeout=0.5
    )
    async with Broadcaster(backend) as broadcaster:
        await broadcaster.publish("t", "before")
        assert outage_lines(caplog) == []
        server.stop()
        for _ in range(3):
            with pytest.raises(BackendUnavailableError):
                await broadcaster.publish("t", "during")
        [down] = await wait_for_lines(caplog, 1)
        assert f"Redis at redis://127.0.0.1:{server.port}/0 is unavailable" in down
        server.start()
        await publish_once_redis_answers(broadcaster)
        down_again, back = await wait_for_lines(caplog, 2)
        assert down_again == down
        assert back.startswith(f"RedisStreamBackend: Redis at redis://127.0.0.1:{server.port}/0")
        assert "is available again, after " in back
        await asyncio.sleep(0.3)
        assert len(outage_lines(caplog)) == 2


async def test_a_stalled_redis_logs_one_line_each_way(
    redis_process: Callable[..., RedisProcess], caplog: Lines
) -> None:
    server = redis_process()
    backend = RedisStreamBackend(
        server.url, prefix=unique_prefix(), publish_timeout=0.3, watch_timeout=0.3
    )
    async with Broadcaster(backend) as broadcaster:
        await broadcaster.publish("t", "before")
        with server.stalled():
            for _ in range(3):
                with pytest.raises(BackendUnavailableError):
                    await broadcaster.publish("t", "during")
            [down] = outage_lines(caplog)
            assert "is unavailable (" in down
        await publish_once_redis_answers(broadcaster)
        lines = await wait_for_lines(caplog, 2)
        assert lines[0] == down
        assert "is available again" in lines[1]
        assert len(lines) == 2, lines
