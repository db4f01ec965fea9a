"""Two uvicorn processes on one Redis: publish on one, receive and resume on the other."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx_sse
import pytest

from tests.processes import free_port
from tests.redis_support import RedisProcess, unique_prefix

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]


class App:
    def __init__(self, redis_url: str, prefix: str, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "BROADCAST_REDIS_URL": redis_url, "BROADCAST_PREFIX": prefix}
        self.log = log
        with log.open("wb") as output:  # the child keeps its own descriptor
            self.process = self._start(env, output)

    def _start(self, env: dict[str, str], output: Any) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                sys.executable, "-m", "uvicorn", "tests.broadcast.apps:app",
                "--host", "127.0.0.1", "--port", str(self.port),
                "--log-level", "warning", "--lifespan", "on",
            ],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )  # fmt: skip

    def wait_ready(self) -> int:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"app exited: {self.log.read_text()}")
            try:
                return int(httpx.get(f"{self.url}/stats", timeout=1).json()["pid"])
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError(f"app did not start: {self.log.read_text()}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def two_apps(redis_server: RedisProcess, tmp_path: Path) -> Iterator[tuple[App, App]]:
    prefix = unique_prefix()
    apps = (
        App(redis_server.url, prefix, tmp_path / "a.log"),
        App(redis_server.url, prefix, tmp_path / "b.log"),
    )
    try:
        pids = {app.wait_ready() for app in apps}
        assert len(pids) == 2
        yield apps
    finally:
        for app in apps:
            app.stop()


async def next_event(events: AsyncIterator[httpx_sse.ServerSentEvent]) -> httpx_sse.ServerSentEvent:
    return await asyncio.wait_for(anext(events), 10)


async def test_publish_on_one_process_and_resume_on_another(two_apps: tuple[App, App]) -> None:
    a, b = two_apps
    async with httpx.AsyncClient(timeout=10) as client:

        async def publish(app: App, topic: str, data: str) -> str:
            response = await client.post(f"{app.url}/publish/{topic}", content=data)
            response.raise_for_status()
            return str(response.json()["id"])

        async with httpx_sse.aconnect_sse(
            client, "GET", f"{b.url}/events", params={"topic": "chat"}
        ) as on_b:
            assert on_b.response.status_code == 200
            received_on_b = on_b.aiter_sse()
            hello = await publish(a, "chat", "hello from A")
            event = await next_event(received_on_b)
            assert (event.id, event.data) == (hello, "hello from A")

            # a subscriber on A reads one event, then goes away
            async with httpx_sse.aconnect_sse(
                client, "GET", f"{a.url}/events", params={"topic": "chat"}
            ) as on_a:
                received_on_a = on_a.aiter_sse()
                seen = await publish(b, "chat", "seen on A")
                event = await next_event(received_on_a)
                assert (event.id, event.data) == (seen, "seen on A")

            missed = [await publish(a, "chat", f"missed {i}") for i in range(3)]
            await publish(a, "other", "not for chat")

            # ... and comes back to B with Last-Event-ID: exactly what it missed, then live
            async with httpx_sse.aconnect_sse(
                client,
                "GET",
                f"{b.url}/events",
                params={"topic": "chat"},
                headers={"Last-Event-ID": seen},
            ) as resumed:
                assert resumed.response.headers["sse-resumed-from"] == seen
                assert "sse-gap" not in resumed.response.headers
                iterator = resumed.aiter_sse()
                got = [await next_event(iterator) for _ in missed]
                assert [(e.id, e.data) for e in got] == [
                    (event_id, f"missed {i}") for i, event_id in enumerate(missed)
                ]
                live = await publish(a, "chat", "live")
                event = await next_event(iterator)
                assert (event.id, event.data) == (live, "live")
