"""Graceful shutdown on real servers: 1,000 open streams, then SIGTERM or SIGINT.

Every client must get the final event and the end of the chunked body (``0\\r\\n\\r\\n``), and
the server must exit well within 1 s + the grace period, without a traceback in its log.
Without the plugin's signal handler both uvicorn and granian wait for the streams to end by
themselves (forever, for these) before they run the app's shutdown.
"""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.processes import free_port, start_listening

APP = "tests.plugin.shutdown_app:app"
CLIENTS = 1000
GRACE = 2.0
FINAL_EVENT = b"event: shutdown\r\nretry: 5000\r\ndata: bye\r\n\r\n"
END_OF_BODY = b"\r\n0\r\n\r\n"


def _raise_open_file_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        limit = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))


def _start(server: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    if server == "uvicorn":
        command = [sys.executable, "-m", "uvicorn", APP, "--port", str(port), "--backlog", "4096"]
    else:
        command = [
            sys.executable, "-m", "granian", "--interface", "asgi", "--port", str(port),
            "--backlog", "4096", APP,
        ]  # fmt: skip
    env = {**os.environ, "SSE_GRACE": str(GRACE)}
    return start_listening(command, port, log, env=env)


async def _client(port: int, all_open: asyncio.Event, count: list[int]) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET /events HTTP/1.1\r\nHost: test\r\n\r\n")
        await writer.drain()
        received = b""
        while b"data: 0\r\n\r\n" not in received:
            chunk = await asyncio.wait_for(reader.read(65536), 20)
            if not chunk:
                return received
            received += chunk
        count[0] += 1
        if count[0] == CLIENTS:
            all_open.set()
        while not received.endswith(END_OF_BODY):
            chunk = await asyncio.wait_for(reader.read(65536), 20)
            if not chunk:
                break
            received += chunk
        return received
    finally:
        writer.close()


async def _run(port: int, process: subprocess.Popen[bytes], sig: int) -> tuple[float, list[bytes]]:
    all_open = asyncio.Event()
    count = [0]
    tasks = []
    for i in range(CLIENTS):
        tasks.append(asyncio.create_task(_client(port, all_open, count)))
        if i % 100 == 99:
            await asyncio.sleep(0.02)
    await asyncio.wait_for(all_open.wait(), 30)
    begun = time.monotonic()
    process.send_signal(sig)
    while process.poll() is None and time.monotonic() - begun < 15:  # noqa: ASYNC110
        await asyncio.sleep(0.005)  # polling a child process: no event to wait on
    exited_after = time.monotonic() - begun
    bodies = await asyncio.wait_for(asyncio.gather(*tasks), 20)
    return exited_after, bodies


@pytest.mark.timeout(60)
@pytest.mark.parametrize("server", ["uvicorn", "granian"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_open_streams_end_cleanly_and_the_server_exits_fast(
    server: str, sig: int, tmp_path: Path
) -> None:
    _raise_open_file_limit(4 * CLIENTS + 256)
    port = free_port()
    log = tmp_path / "server.log"
    process = _start(server, port, log)
    try:
        exited_after, bodies = asyncio.run(_run(port, process, sig))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = log.read_text(errors="replace")
    assert exited_after < 1.0 + GRACE, (
        f"{server} took {exited_after:.2f} s to exit:\n{output[-2000:]}"
    )
    assert "Traceback" not in output
    assert "ERROR" not in output
    clean = [body for body in bodies if FINAL_EVENT in body and body.endswith(END_OF_BODY)]
    assert len(clean) == CLIENTS, [body[-200:] for body in bodies if body not in clean][:3]
