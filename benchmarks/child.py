"""The client side of the line protocol between a measuring parent and its client process.

The parent writes one command per line on the client's stdin and reads one answer per line
from its stdout (``WORD`` or ``WORD <json>``); see ``processes.read_line`` for the parent side.
Used by the benchmark clients and by the soak test's client (``tests/soak/load_client.py``).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

from benchmarks.processes import raise_fd_limit

T = TypeVar("T")


async def read_command(timeout: float) -> list[str]:
    """The words of the next line on stdin (an empty list at end of input)."""
    loop = asyncio.get_running_loop()
    line: str = await asyncio.wait_for(loop.run_in_executor(None, sys.stdin.readline), timeout)
    return line.split()


async def expect(word: str, timeout: float) -> None:
    """Wait for the line ``word`` on stdin; exit with a message on anything else."""
    command = await read_command(timeout)
    if command != [word]:
        raise SystemExit(f"expected {word!r}, got {' '.join(command)!r}")


def say(word: str, payload: object = None) -> None:
    """Answer the parent: ``word``, followed by ``payload`` as JSON if there is one."""
    print(word if payload is None else f"{word} {json.dumps(payload)}", flush=True)


def run_loop(coro: Coroutine[Any, Any, T]) -> T:
    """Run on uvloop when installed: the loop a production uvicorn would use."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def run_client(coro: Coroutine[Any, Any, T]) -> T:
    """Run a client holding thousands of sockets: lift the descriptor limit, then the loop."""
    raise_fd_limit()
    return run_loop(coro)
