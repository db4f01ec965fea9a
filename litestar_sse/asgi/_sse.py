"""``ASGIStreamingSSEResponse``: the send loop of an event stream, with idle keep-alive pings.

A ping is a comment line, started by the loop's timer wheel when the stream has been idle for
``ping_interval``. A server's ``send()`` for a small body normally completes without suspending
(uvicorn writes to the transport and returns), so the ping is sent right there, inline, in the
request's context: no task per ping. Only a send that has to wait (flow control) is finished in
a task, and events wait for it, so a ping never interleaves with an event.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Final

from litestar_sse._validation import check_seconds
from litestar_sse.asgi._counters import COUNTERS
from litestar_sse.asgi._runtime import spawn
from litestar_sse.asgi._state import StreamState
from litestar_sse.asgi._stepped import Resumed, start_send
from litestar_sse.asgi._stream import ASGIStreamingResponse
from litestar_sse.codec._encoder import DEFAULT_SEPARATOR, check_separator, encode_comment

if TYPE_CHECKING:
    from litestar.types import HTTPResponseBodyEvent, Receive, Scope, Send

__all__ = ("ASGIStreamingSSEResponse",)

_IDLE: Final = StreamState.IDLE
_PINGING: Final = StreamState.PINGING


class ASGIStreamingSSEResponse(ASGIStreamingResponse):
    """A ``text/event-stream`` response with idle pings.

    Accepts the keyword arguments of :class:`ASGIStreamingResponse` (and so of Litestar's)
    plus:

    Args:
        ping_interval: Seconds without any write after which a comment ping is sent; ``None``
            disables pings (``0`` is refused, as everywhere). Pings never interleave with an
            event and are covered by ``send_timeout``.
        ping_message: The comment text of a ping.
        sep: Line ending of the ping: ``"\\r\\n"``, ``"\\n"`` or ``"\\r"``.
    """

    __slots__ = ("_ping_bytes", "_ping_task", "ping_interval")

    def __init__(
        self,
        *,
        ping_interval: float | None = None,
        ping_message: str = "ping",
        sep: str = DEFAULT_SEPARATOR,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("media_type", "text/event-stream")
        super().__init__(**kwargs)
        self.ping_interval = check_seconds(ping_interval, "ping_interval")
        sep_bytes = check_separator(sep).encode()
        # A comment line and no blank line: some client decoders (openai's, httpx-sse's)
        # dispatch an empty event on every blank line once an id was seen.
        self._ping_bytes = encode_comment(ping_message, sep_bytes)
        self._ping_task: Any = None  # an asyncio.Task, or a runtime.TrioTask
        self.headers.setdefault("cache-control", "no-cache")
        self.headers.setdefault("x-accel-buffering", "no")

    def add_keep_alive(self, scope: Scope) -> None:
        """Add ``Connection: keep-alive`` for an HTTP/1.1 request (HTTP/2 forbids the header).

        Not when the client asked for ``Connection: close`` (the server then says so itself),
        nor over a ``Connection`` header the app set. Called when the response is built from a
        request (so ``encode_headers()`` shows it, as with Litestar's response) and again
        when it is sent.
        """
        if (
            scope.get("http_version", "1.1") == "1.1"
            and "connection" not in self.headers
            and not _asks_to_close(scope)
        ):
            self.headers["connection"] = "keep-alive"

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Coroutine[Any, Any, None]:
        """Send the response, with ``Connection: keep-alive`` where it belongs.

        Not a coroutine function itself: it returns the base class's coroutine, so an open
        stream keeps no frame of this call.
        """
        self.add_keep_alive(scope)
        return super().__call__(scope, receive, send)

    # -- pings ---------------------------------------------------------------------------------

    def _ping(self) -> None:
        COUNTERS.pings_sent += 1
        self._state = _PINGING
        message: HTTPResponseBodyEvent = {
            "type": "http.response.body",
            "body": self._ping_bytes,
            "more_body": True,
        }
        if self._scope is not None:  # trio: a coroutine is never stepped by hand there
            self._ping_task = spawn(self._send_ping(message), "litestar_sse.ping")
            return
        try:
            sending = start_send(self._send, message)  # on_timer runs it in the request's context
        except OSError:
            self._ping_sent()
            self.stop("disconnect")
            return
        except Exception:
            self._ping_sent()
            self.get_logger().exception("Exception raised while sending a keep-alive ping")
            return
        if sending is None:
            self._ping_sent()
            return
        self._ping_task = spawn(self._finish_ping(sending))

    async def _finish_ping(self, sending: Resumed) -> None:
        try:
            await sending
        except OSError:
            self.stop("disconnect")
        finally:
            self._ping_task = None
            self._ping_sent()

    async def _send_ping(self, message: HTTPResponseBodyEvent) -> None:
        """The ping on trio, in a task of its own; events wait for it as on asyncio."""
        try:
            await self._send(message)
        except OSError:
            self.stop("disconnect")
        except Exception:
            self.get_logger().exception("Exception raised while sending a keep-alive ping")
        finally:
            self._ping_task = None
            self._ping_sent()

    def _ping_sent(self) -> None:
        if self._state is _PINGING:  # else stopping or finishing: that state stays
            self._state = _IDLE

    async def _wait_for_ping(self) -> None:
        task = self._ping_task
        if task is not None:
            await task  # never interleave a ping with an event

    def _drop_ping(self) -> None:
        task = self._ping_task
        if task is not None:
            task.cancel()


def _asks_to_close(scope: Scope) -> bool:
    return any(
        name == b"connection" and b"close" in value.lower() for name, value in scope["headers"]
    )
