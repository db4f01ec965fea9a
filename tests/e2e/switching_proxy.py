"""A loopback proxy that a test switches from one server process to another by cutting every
connection, as a network failure or a load balancer's failover would."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

__all__ = ("Connection", "SwitchingProxy")


@dataclass
class Connection:
    """One client connection through the proxy: where it went and what the client sent."""

    target: int
    sent: bytearray = field(default_factory=bytearray)
    received: bytearray = field(default_factory=bytearray)
    transports: list[asyncio.Transport] = field(default_factory=list)


class SwitchingProxy:
    """Forwards each new loopback connection to the current target port. ``switch`` aborts
    every open connection (as a network failure would) and sends the next ones elsewhere."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.connections: list[Connection] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = Connection(self.target)
        self.connections.append(connection)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.close()
            return
        connection.transports += [writer.transport, up_writer.transport]  # type: ignore[list-item]
        loop = asyncio.get_running_loop()
        for source, sink, record in (
            (reader, up_writer, connection.sent),
            (up_reader, writer, connection.received),
        ):
            task = loop.create_task(self._pipe(source, sink, record))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _pipe(
        source: asyncio.StreamReader, sink: asyncio.StreamWriter, record: bytearray
    ) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while chunk := await source.read(65536):
                record += chunk
                sink.write(chunk)
                await sink.drain()
        sink.close()

    def switch(self, target: int) -> None:
        self.target = target
        for connection in self.connections:
            for transport in connection.transports:
                transport.abort()

    async def close(self) -> None:
        self.switch(self.target)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def requests_to(self, target: int) -> str:
        return "".join(c.sent.decode("latin-1") for c in self.connections if c.target == target)

    def responses_of(self, target: int) -> str:
        return "".join(c.received.decode("latin-1") for c in self.connections if c.target == target)
