"""The resume storm of the hostile-clients test: ``python -m tests.soak.hostile_client``.

A process of its own, so that parsing the replays (a megabyte per reading client and wave)
does not share an event loop with the good readers and the publisher the test measures.
Talks to the test over stdin/stdout, one line each way:

1. prints ``READY``;
2. reads ``GO <json>``: ``port``, ``resume_from`` (the ``Last-Event-ID`` every client sends),
   ``expected`` (the ids of the replay, in order), ``topics``, ``readers``, ``silent``,
   ``first_wave`` and ``until`` (``time.monotonic()`` values: the clock is the machine's, the
   same in both processes) and ``every`` (seconds between waves);
3. in every wave, each client reconnects within 0.3 s of the others, as after a network blip:
   a *reader* reads its whole replay and leaves, a *silent* client reads the response head,
   waits 1 to 2 s without reading and closes the socket with its replay unread (a RST);
4. once the last wave is over, prints ``RESULT <json>`` (one :class:`Attempt` per connection)
   and exits.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import socket
import sys
import time
from typing import Any

import httpx

from litestar_sse.codec import EventDecoder

HOST = "127.0.0.1"


def query(topics: list[str]) -> str:
    return "&".join(f"topic={topic}" for topic in topics)


async def open_silent(
    port: int, target: str, last_event_id: str | None = None
) -> tuple[socket.socket, int]:
    """Connect with a 4 KiB receive buffer, send the request, read the response head (and
    whatever came with it); then nothing reads from the socket. Returns it and the status."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, (HOST, port))
        resume = f"Last-Event-ID: {last_event_id}\r\n" if last_event_id else ""
        request = f"GET {target} HTTP/1.1\r\nHost: {HOST}\r\n{resume}\r\n"
        await loop.sock_sendall(sock, request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            data = await loop.sock_recv(sock, 1024)
            if not data:
                raise ConnectionError(f"closed before the response head: {head!r}")
            head += data
    except BaseException:
        sock.close()
        raise
    return sock, int(head.split(b" ", 2)[1])


@dataclasses.dataclass
class Attempt:
    """One connection of a storm client."""

    began: float
    silent: bool
    status: int = 0
    head_s: float = 0.0
    """Seconds until the response head (or the error)."""
    error: str | None = None
    gap: str | None = None
    events: int = 0
    exact: bool = False
    """A reader: its replay was exactly the expected events, in order."""
    prefix: bool = True
    """A reader: what it got was the start of the replay (all of it, or until its stream
    ended)."""
    ended_early: bool = False
    """A reader: the stream ended before the whole replay came."""
    others: list[str] = dataclasses.field(default_factory=list)
    """Event types other than ``message`` (a gap event would be here)."""


class Storm:
    def __init__(self, settings: dict[str, Any]) -> None:
        self.port: int = settings["port"]
        self.resume_from: str = settings["resume_from"]
        self.expected: list[str] = settings["expected"]
        self.target = f"/events?{query(settings['topics'])}"
        self.every: float = settings["every"]
        self.first_wave: float = settings["first_wave"]
        self.until: float = settings["until"]
        self.rng = random.Random(14)
        self.attempts: list[Attempt] = []

    async def client(self, http: httpx.AsyncClient, silent: bool) -> None:
        wave = self.first_wave
        while wave < self.until:
            await asyncio.sleep(max(0.0, wave + self.rng.uniform(0, 0.3) - time.monotonic()))
            attempt = Attempt(time.monotonic(), silent)
            self.attempts.append(attempt)
            try:
                if silent:
                    await self._silent(attempt)
                else:
                    await self._reading(http, attempt)
            except (OSError, httpx.HTTPError, asyncio.TimeoutError) as exc:
                attempt.error = repr(exc)
                attempt.head_s = attempt.head_s or time.monotonic() - attempt.began
            while wave < time.monotonic():  # the next wave this client can join
                wave += self.every

    async def _silent(self, attempt: Attempt) -> None:
        sock, attempt.status = await asyncio.wait_for(
            open_silent(self.port, self.target, self.resume_from), 30
        )
        attempt.head_s = time.monotonic() - attempt.began
        try:
            await asyncio.sleep(self.rng.uniform(1.0, 2.0))
        finally:
            sock.close()  # with its replay unread: a RST

    async def _reading(self, http: httpx.AsyncClient, attempt: Attempt) -> None:
        headers = {"Last-Event-ID": self.resume_from}
        async with http.stream("GET", self.target, headers=headers) as response:
            attempt.status = response.status_code
            attempt.head_s = time.monotonic() - attempt.began
            attempt.gap = response.headers.get("sse-gap")
            if response.status_code != 200:
                await response.aread()
                return
            decoder, ids, expected = EventDecoder(), [], self.expected
            async for chunk in response.aiter_raw():
                for event in decoder.feed(chunk):
                    if event.event == "message":
                        ids.append(event.id)
                    else:
                        attempt.others.append(event.event)
                if len(ids) >= len(expected):
                    break
            else:
                attempt.ended_early = True
            attempt.events = len(ids)
            attempt.exact = ids == expected
            attempt.prefix = ids == expected[: len(ids)]


async def main() -> None:
    print("READY", flush=True)
    line = await asyncio.to_thread(sys.stdin.readline)
    word, _, rest = line.partition(" ")
    assert word == "GO", line
    settings = json.loads(rest)
    storm = Storm(settings)
    base_url = f"http://{HOST}:{storm.port}"
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
    timeout = httpx.Timeout(30.0, read=None)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout) as http:
        await asyncio.gather(
            *(storm.client(http, False) for _ in range(settings["readers"])),
            *(storm.client(http, True) for _ in range(settings["silent"])),
        )
    result = [dataclasses.asdict(attempt) for attempt in storm.attempts]
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
