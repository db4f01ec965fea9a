"""A real server on trio: ``hypercorn -k trio``, a real client reading events and pings, and a
disconnect that reaches the producer's ``finally`` and ``on_disconnect``."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.processes import free_port, start_listening, stop


@pytest.fixture(scope="module")
def trio_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    directory = tmp_path_factory.mktemp("trio")
    marks = directory / "marks"
    port = free_port()
    command = [sys.executable, "-m", "hypercorn", "-k", "trio", "--bind", f"127.0.0.1:{port}"]
    process = start_listening(
        [*command, "tests.e2e.trio_app:app"],
        port,
        directory / "server.log",
        env={"SSE_TRIO_MARKS": str(marks), "PATH": "/usr/bin:/bin"},
    )
    try:
        yield f"http://127.0.0.1:{port}", marks
    finally:
        stop(process)


def wait_for_text(path: Path, text: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        content = path.read_text(encoding="utf-8") if path.exists() else ""
        if text in content:
            return content
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never written; got {content!r}")


def test_events_pings_and_a_disconnect_that_reaches_the_finally(
    trio_server: tuple[str, Path],
) -> None:
    url, marks = trio_server
    received = b""
    with httpx.Client(timeout=10) as client, client.stream("GET", f"{url}/ticks") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for chunk in response.iter_raw():
            received += chunk
            if received.count(b"data: ") >= 2 and b": ping" in received:
                break
    assert received.startswith(b"data: 0\r\n\r\n"), received
    assert b"data: 1\r\n\r\n" in received
    content = wait_for_text(marks, "finally")
    assert "library trio" in content
    assert "disconnect" in wait_for_text(marks, "disconnect")


def test_a_generator_handler_of_the_plugin(trio_server: tuple[str, Path]) -> None:
    url, _ = trio_server
    response = httpx.get(f"{url}/plugin", timeout=10)
    assert response.status_code == 200
    assert response.text == "data: a\r\n\r\ndata: b\r\n\r\ndata: c\r\n\r\n"
