"""A TCP proxy on loopback that cuts each connection after a random number of response bytes
(most of them land inside an event), to test that a client resumes exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import random


class CuttingProxy:
    """Forwards 127.0.0.1:``port`` to ``upstream_port``; each connection is cut (both sides,
    abruptly) after between ``low`` and ``high`` bytes from the server."""

    def __init__(self, upstream_port: int, low: int, high: int, seed: int = 0) -> None:
        self.upstream_port = upstream_port
        self.low, self.high = low, high
        self.random = random.Random(seed)
        self.cuts = 0
        self.connections = 0
        self.cutting = True
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def __aenter__(self) -> CuttingProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        budget = self.random.randint(self.low, self.high) if self.cutting else None
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.transport.abort()
            return
        to_server = asyncio.ensure_future(self._pipe(reader, up_writer, None))
        to_client = asyncio.ensure_future(self._pipe(up_reader, writer, budget))
        for task in (to_server, to_client):
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        with contextlib.suppress(BaseException):
            await asyncio.wait([to_server, to_client], return_when=asyncio.FIRST_COMPLETED)
        for task in (to_server, to_client):
            task.cancel()
        writer.transport.abort()
        up_writer.transport.abort()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, budget: int | None
    ) -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                return
            if budget is not None and len(data) >= budget:
                writer.write(data[:budget])
                self.cuts += 1
                return  # the caller aborts both sides: a cut mid-response
            if budget is not None:
                budget -= len(data)
            writer.write(data)
            await writer.drain()
