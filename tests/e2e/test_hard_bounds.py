"""Hard bounds on a real uvicorn (``tests/e2e/bounds_app.py``), with real sockets.

* a producer's cleanup that hangs is cut after ``cleanup_timeout`` (warning, metric), and a
  SIGTERM with hung cleanups exits within the grace period;
* ``max_lifetime`` ends clients that do not read, even with ``send_timeout=None``;
* a SIGTERM with clients that do not read exits without uvicorn's own graceful timeout;
* clients that read a byte now and then from 20 addresses do not hold every
  ``max_connections`` slot past ``send_timeout``, while slow clients that keep up stay.

uvicorn runs WITHOUT ``--timeout-graceful-shutdown``: only the plugin bounds its exit.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.processes import free_port, start_listening

APP = "tests.e2e.bounds_app:app"
HOST = "127.0.0.1"
GRACE = 1.0
END_OF_BODY = b"\r\n0\r\n\r\n"

pytestmark = pytest.mark.timeout(90)


class Uvicorn:
    def __init__(self, process: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.process, self.port, self.log_path = process, port, log

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def state(self) -> dict[str, Any]:
        response = httpx.get(f"http://{HOST}:{self.port}/state", timeout=5)
        response.raise_for_status()
        return dict(response.json())

    def wait_for_state(self, predicate: Any, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        current = self.state()
        while not predicate(current) and time.monotonic() < deadline:
            time.sleep(0.1)
            current = self.state()
        return current

    def terminate_and_time_exit(self, limit: float) -> float:
        """SIGTERM; seconds until the process exited (``limit`` + 5 if it did not)."""
        begun = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=limit + 5)
        except subprocess.TimeoutExpired:
            return limit + 5
        return time.monotonic() - begun


@contextmanager
def uvicorn(tmp_path: Path, *options: str, **settings: str) -> Iterator[Uvicorn]:
    port = free_port()
    log = tmp_path / "uvicorn.log"
    env = {**os.environ, "SSE_GRACE": str(GRACE), **settings}
    command = [sys.executable, "-m", "uvicorn", APP, "--host", HOST, "--port", str(port)]
    command += options
    process = start_listening(command, port, log, env=env)
    try:
        yield Uvicorn(process, port, log)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


async def open_stream(
    port: int, path: str, *, source: str = HOST, receive_buffer: int | None = None
) -> socket.socket:
    """Connect (from ``source``), send ``GET path``, read the response head and the first
    bytes of the body; return the socket, non-blocking."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    if receive_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.setblocking(False)
    try:
        sock.bind((source, 0))
        await loop.sock_connect(sock, (HOST, port))
        await loop.sock_sendall(sock, f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            data = await asyncio.wait_for(loop.sock_recv(sock, 1), 10)
            assert data, head
            head += data
        assert head.startswith(b"HTTP/1.1 200"), head
    except BaseException:
        sock.close()
        raise
    return sock


def end_of(sock: socket.socket, *, budget: float = 5.0) -> str:
    """Read what is left: ``"reset"``, ``"cut"`` (closed without the end of the chunked body),
    ``"clean"`` (with it), or ``"open"`` (data still flowing after ``budget`` seconds)."""
    sock.setblocking(True)
    sock.settimeout(0.5)
    tail = b""
    deadline = time.monotonic() + budget
    try:
        while time.monotonic() < deadline:
            try:
                data = sock.recv(1 << 20)
            except TimeoutError:
                continue
            if not data:
                return "clean" if tail.endswith(END_OF_BODY) else "cut"
            tail = (tail + data)[-16:]
    except ConnectionResetError:
        return "reset"
    return "open"


# -- a cleanup that hangs (issue: cleanup_timeout) ----------------------------------------------


def test_hung_cleanups_are_cut_after_cleanup_timeout(tmp_path: Path) -> None:
    with uvicorn(tmp_path, SSE_CLEANUP_TIMEOUT="1") as server:

        async def connect_and_leave() -> None:
            socks = [await open_stream(server.port, "/hung") for _ in range(5)]
            for sock in socks:
                sock.close()

        asyncio.run(connect_and_leave())
        left = time.monotonic()
        state = server.wait_for_state(lambda s: s["open"] == 0, timeout=10)
        took = time.monotonic() - left
        assert state["open"] == 0, state  # no request held for ever
        assert state["cleanups"] == {"started": 5, "finished": 0}
        assert state["cleanups_cut"] == 5
        assert took < 1 + 3
        log = server.log()
    warnings = [line for line in log.splitlines() if "was still cleaning up" in line]
    assert len(warnings) == 5, log
    assert all("GET /hung" in line and "cleanup_timeout" in line for line in warnings)
    assert "Traceback" not in log


def test_sigterm_with_hung_cleanups_exits_within_the_grace_period(tmp_path: Path) -> None:
    # cleanup_timeout is long: only the shutdown's grace period can bound the exit
    with uvicorn(tmp_path, SSE_CLEANUP_TIMEOUT="60") as server:

        async def streams() -> tuple[list[socket.socket], list[socket.socket]]:
            staying = [await open_stream(server.port, "/hung") for _ in range(5)]
            leaving = [await open_stream(server.port, "/hung") for _ in range(5)]
            return staying, leaving

        staying, leaving = asyncio.run(streams())
        for sock in leaving:
            sock.close()
        server.wait_for_state(lambda s: s["cleanups"]["started"] == 5, timeout=10)
        exited_after = server.terminate_and_time_exit(GRACE + 3)
        for sock in staying:
            sock.close()
        log = server.log()
    assert exited_after < GRACE + 3, log[-3000:]
    assert "Traceback" not in log


# -- clients that do not read (issue 19, findings 7 and 17) --------------------------------------


def test_max_lifetime_ends_clients_that_do_not_read_without_a_send_timeout(
    tmp_path: Path,
) -> None:
    lifetime = 2.0
    with uvicorn(tmp_path, SSE_SEND_TIMEOUT="none", SSE_MAX_LIFETIME=str(lifetime)) as server:

        async def non_readers() -> list[socket.socket]:
            return [await open_stream(server.port, "/flood", receive_buffer=4096) for _ in range(5)]

        socks = asyncio.run(non_readers())
        opened = time.monotonic()
        try:
            state = server.wait_for_state(lambda s: s["open"] == 0, timeout=lifetime + 8)
            freed_after = time.monotonic() - opened
            ends = [end_of(sock) for sock in socks]
        finally:
            for sock in socks:
                sock.close()
        log = server.log()
    assert state["open"] == 0, state
    assert freed_after < lifetime + GRACE + 3
    assert state["stops"].get("lifetime") == 5, state
    assert ends == ["reset"] * 5  # cut hard: the server did not wait for them to read
    assert "Traceback" not in log


# uvicorn's defaults here (httptools on uvloop), and its other HTTP and loop implementations:
# the connection is reached the same way in each (asgi/_transport.py)
@pytest.mark.parametrize(
    "options", [(), ("--http", "h11", "--loop", "asyncio")], ids=["httptools-uvloop", "h11-asyncio"]
)
def test_sigterm_with_clients_that_do_not_read_exits_within_the_grace_period(
    options: tuple[str, ...], tmp_path: Path
) -> None:
    with uvicorn(tmp_path, *options, SSE_SEND_TIMEOUT="30") as server:

        async def non_readers() -> list[socket.socket]:
            flood = [
                await open_stream(server.port, "/flood", receive_buffer=4096) for _ in range(5)
            ]
            ticks = [
                await open_stream(server.port, "/ticks", receive_buffer=4096) for _ in range(5)
            ]
            return flood + ticks

        socks = asyncio.run(non_readers())
        try:
            time.sleep(1.0)  # the floods fill every buffer on the way
            exited_after = server.terminate_and_time_exit(GRACE + 3)
        finally:
            for sock in socks:
                sock.close()
        log = server.log()
    assert exited_after < GRACE + 3, log[-3000:]
    assert "Traceback" not in log


def test_trickle_readers_do_not_hold_every_slot_past_send_timeout(tmp_path: Path) -> None:
    send_timeout = 2.0
    trickles, honest = 20, 2
    settings = {
        "SSE_SEND_TIMEOUT": str(send_timeout),
        "SSE_MAX_CONNECTIONS": str(trickles + honest),
    }
    with uvicorn(tmp_path, **settings) as server:
        result: dict[str, Any] = {}

        async def trickle(sock: socket.socket) -> None:
            """A byte every 2 s: each write of the server completes, into its buffers."""
            loop = asyncio.get_running_loop()
            while True:
                if not await loop.sock_recv(sock, 1):
                    return
                await asyncio.sleep(2)

        async def keeps_up(sock: socket.socket) -> None:
            """A slow client (1 KiB every 0.2 s) that takes the ~4 KB/s feed as it comes."""
            loop = asyncio.get_running_loop()
            while True:
                if not await loop.sock_recv(sock, 1024):
                    return
                await asyncio.sleep(0.2)

        async def run() -> None:
            # 20 source addresses, as a per-client limit would see them
            slow = [
                await open_stream(
                    server.port, "/ticks", source=f"127.0.0.{2 + i}", receive_buffer=4096
                )
                for i in range(trickles)
            ]
            good = [await open_stream(server.port, "/ticks") for _ in range(honest)]
            tasks = [asyncio.create_task(trickle(s)) for s in slow]
            tasks += [asyncio.create_task(keeps_up(s)) for s in good]
            begun = time.monotonic()
            async with httpx.AsyncClient(base_url=f"http://{HOST}:{server.port}") as client:
                status = 503
                while time.monotonic() - begun < 5 * send_timeout and status == 503:
                    await asyncio.sleep(0.25)
                    async with client.stream("GET", "/ticks", timeout=5) as response:
                        status = response.status_code
                result["freed_after"] = time.monotonic() - begun
                result["status"] = status
                await asyncio.sleep(send_timeout)  # the slow but steady clients stay
                result["state"] = await asyncio.to_thread(server.state)
                result["honest_alive"] = [not t.done() for t in tasks[trickles:]]
            for task in tasks:
                task.cancel()
            for sock in slow + good:
                sock.close()

        asyncio.run(run())
        log = server.log()
    assert result["status"] == 200, result  # a new client finds a slot
    assert result["freed_after"] < 4 * send_timeout, result
    assert result["state"]["stops"].get("send_timeout") == trickles, result
    assert result["state"]["open"] == honest, result
    assert result["honest_alive"] == [True] * honest
    assert log.count("did not take") == trickles
    assert "Traceback" not in log
