"""One request run against the app on a test client's event loop, its messages handed over.

The app's ``send`` puts messages into a bounded in-memory stream that the test reads across the
thread boundary (for the sync client); ``receive`` gives the request body, then waits for the
disconnect the test sends when it leaves the stream.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import anyio

from litestar_sse._compat import client_scope

if TYPE_CHECKING:
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
    from litestar.testing import AsyncTestClient, TestClient
    from litestar.types import HTTPDisconnectEvent, HTTPRequestEvent, Message

__all__ = ("END", "AppConnection", "build_connection")

END: Final = object()
"""What :meth:`AppConnection.next_message` returns once the app returned."""
_BUFFER: Final = 64  # body chunks in flight before the app's send waits for the test


class AppConnection:
    """One request to the app, served on the client's event loop."""

    __slots__ = (
        "_disconnected",
        "_error",
        "_messages_in",
        "_messages_out",
        "_request_sent",
        "app",
        "body",
        "scope",
    )

    def __init__(self, app: Any, scope: dict[str, Any], body: bytes) -> None:
        self.app = app
        self.scope = scope
        self.body = body
        self._request_sent = False
        self._error: BaseException | None = None

    async def start(self) -> None:
        """Create the loop-bound primitives (called on the portal's loop)."""
        self._disconnected = anyio.Event()
        out: tuple[MemoryObjectSendStream[Any], MemoryObjectReceiveStream[Any]]
        out = anyio.create_memory_object_stream(_BUFFER)
        self._messages_in, self._messages_out = out

    async def run(self) -> None:
        """Run the app to the end; the test reads ``END`` after the last message."""
        try:
            await self.app(self.scope, self._receive, self._send)
        except BaseException as exc:  # handed to the test, re-raised there
            self._error = exc
            if not isinstance(exc, Exception):
                raise
        finally:
            self._messages_in.close()  # the test reads what is buffered, then the end

    async def _receive(self) -> HTTPRequestEvent | HTTPDisconnectEvent:
        if not self._request_sent:
            self._request_sent = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        await self._disconnected.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: Message) -> None:
        if self._disconnected.is_set():
            return  # like a server whose client has gone: the message is dropped
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
            await self._messages_in.send(message)

    async def next_message(self, wait: float | None) -> Any:
        """The app's next message, ``END`` once it returned; TimeoutError after ``wait`` s."""
        try:
            with anyio.fail_after(wait):
                return await self._messages_out.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            return END
        except TimeoutError:
            raise TimeoutError("Nothing more from the event stream within the timeout") from None

    def next_message_left(self) -> Any:
        """The next message the app sent before its loop stopped, ``END`` when none is left.

        Litestar 3's ``TestClient`` stops its event loop when the client exits, which may
        happen while a test still reads the stream (a shutdown test): nothing runs any more,
        so the buffer is read directly.
        """
        try:
            return self._messages_out.receive_nowait()
        except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
            return END

    def drop(self) -> None:
        """Close the test's end of the buffer once the app's loop has stopped."""
        self._messages_out.close()

    async def disconnect(self) -> None:
        """Tell the app the client has gone, and unblock any send waiting for room."""
        self._disconnected.set()
        self._messages_out.close()

    @property
    def error(self) -> BaseException | None:
        """The exception the app raised, if any."""
        return self._error


def build_connection(
    client: TestClient[Any] | AsyncTestClient[Any],
    method: str,
    url: str,
    last_event_id: str | None,
    request_kwargs: Mapping[str, Any],
) -> AppConnection:
    request = client.build_request(method, url, **request_kwargs)
    if last_event_id is not None:
        request.headers["Last-Event-ID"] = last_event_id
    body = request.read()
    scope = client_scope(client, request)
    scope.update(method=request.method, http_version="1.1", extensions={})
    return AppConnection(client.app, scope, body)
