"""``ServerSentEvent``: the Litestar response a handler returns to stream events."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from litestar.types import Empty, EmptyType

from litestar_sse._error_events import ErrorEvent
from litestar_sse._message import SEND_AS_IS, ItemEncoder, make_item_encoder, wire_chunks_of
from litestar_sse._response.host import StreamDefaults, check_stream_defaults, stream_host
from litestar_sse._response.stream import Stream, StreamContent, improperly_configured
from litestar_sse._serialization import json_encoder
from litestar_sse.asgi import ASGIStreamingSSEResponse, DisconnectHandler
from litestar_sse.asgi._stream import DEFAULT_CLEANUP_TIMEOUT
from litestar_sse.codec._encoder import (
    DEFAULT_SEPARATOR,
    check_comment,
    check_event_id,
    check_event_type,
    check_retry,
    encode_fields,
)

if TYPE_CHECKING:
    from litestar.app import Litestar
    from litestar.background_tasks import BackgroundTask, BackgroundTasks
    from litestar.connection import Request
    from litestar.datastructures.cookie import Cookie
    from litestar.enums import MediaType
    from litestar.response.base import ASGIResponse
    from litestar.types import ResponseCookies, ResponseHeaders, TypeEncodersMap

__all__ = ("ServerSentEvent",)


class ServerSentEvent(Stream):
    """A ``text/event-stream`` response: each item the content yields becomes one event.

    Takes the arguments of :class:`litestar.response.ServerSentEvent`, plus pings, a send
    timeout, a disconnect callback and a line separator. Field values are validated here, so a
    bad value fails when the response is created, not in the middle of the stream.

    With :class:`~litestar_sse.SSEPlugin` registered, every argument marked *app default*
    below that is not passed takes its value from the app's :class:`~litestar_sse.SSEConfig`;
    an explicit value (``None`` included) always wins. Without the plugin the defaults are the
    ones shown.

    Items may be ``int``, ``str``, ``bytes`` (UTF-8), a ``dict`` of message fields (``data``,
    ``event``, ``id``, ``retry``, ``comment``, ``sep``), a
    :class:`~litestar_sse.ServerSentEventMessage`, a :class:`~litestar_sse.RawEvent`, or any
    typed object (msgspec Struct, dataclass, pydantic model, list, ...) which is sent as JSON
    ``data`` using the app's ``type_encoders``. A content that gives its items as wire bytes (a
    broadcast :class:`~litestar_sse.broadcast.Subscription`, see
    its ``wire_chunks()``) is sent as those bytes, chunk by chunk.

    Args:
        content: str/bytes (one event), a sync or async iterable/iterator/generator of items,
            or a callable returning one of these.
        event_type: Event type of every event. Like the three below, a default: a dict or
            message item that sets the field itself keeps its own value; items without data
            and raw events get none of them.
        event_id: Event id of every event.
        retry_duration: Client reconnection time in milliseconds, on every event. Unset, the
            app default ``retry`` is sent once, when the stream opens.
        comment_message: Comment on every event.
        ping_interval: Seconds without any write after which a ``: ping`` comment is sent
            (app default, else ``None``: no pings).
        ping_message: The text of the ping comment (app default, else ``"ping"``).
        send_timeout: Seconds one send (pings included) may take before the stream is stopped
            (app default, else ``None``).
        cleanup_timeout: Seconds the producer's cleanup may take once the stream stopped (a
            generator's ``finally`` that awaits) before it is cancelled, with a warning naming
            the route; ``None`` waits for ever (app default, else ``5``).
        sep: Line separator: ``"\\r\\n"``, ``"\\n"`` or ``"\\r"`` (app default, else
            ``"\\r\\n"``).
        on_disconnect: Called (sync or async) if the client goes away before the end: a
            disconnect, a send timeout, or the server reporting the connection closed. Given
            the reason (``"disconnect"``, ``"send_timeout"``, or ``"overflow"`` for a slow
            broadcast subscriber) if it takes one argument.
        type_encoders: Extra JSON encoders for typed items, merged over the app's.
        error_event: Called with the exception if the producer raises (a bad item included),
            after it is logged; the item it returns (a message, a dict of fields...) is sent as
            the last event, so the client knows the stream failed. See
            :mod:`litestar_sse._error_events` for OpenAI's and Anthropic's (app default, else
            ``None``: the body just ends).

    Raises:
        ImproperlyConfiguredException: an invalid argument (CR/LF in ``event_type``, NUL in
            ``event_id``, a negative ``retry_duration``, a bad separator, ``ping_interval <=
            0``, ...), named in the message. It is Litestar's exception, a ``ValueError``.
    """

    __slots__ = (
        "_app_defaults",
        "comment_message",
        "error_event",
        "event_id",
        "event_type",
        "ping_interval",
        "ping_message",
        "retry_duration",
        "sep",
    )

    def __init__(
        self,
        content: StreamContent | Callable[[], StreamContent],
        *,
        background: BackgroundTask | BackgroundTasks | None = None,
        cookies: ResponseCookies | None = None,
        encoding: str = "utf-8",
        headers: ResponseHeaders | None = None,
        event_type: str | None = None,
        event_id: int | str | None = None,
        retry_duration: int | EmptyType | None = Empty,
        comment_message: str | None = None,
        status_code: int | None = None,
        ping_interval: float | EmptyType | None = Empty,
        ping_message: str | EmptyType = Empty,
        send_timeout: float | EmptyType | None = Empty,
        sep: str | EmptyType = Empty,
        on_disconnect: DisconnectHandler | None = None,
        type_encoders: TypeEncodersMap | None = None,
        error_event: ErrorEvent | EmptyType | None = Empty,
        cleanup_timeout: float | EmptyType | None = Empty,
    ) -> None:
        # Arguments left unset take the app's SSEConfig value in to_asgi_response; until then
        # (and without the plugin) they hold the defaults of a plain ServerSentEvent.
        unset = {
            name
            for name, value in (
                ("retry_duration", retry_duration),
                ("ping_interval", ping_interval),
                ("ping_message", ping_message),
                ("send_timeout", send_timeout),
                ("cleanup_timeout", cleanup_timeout),
                ("sep", sep),
                ("error_event", error_event),
            )
            if value is Empty
        }
        self._app_defaults = frozenset(unset)
        retry_duration = None if retry_duration is Empty else retry_duration
        ping_interval = None if ping_interval is Empty else ping_interval
        ping_message = "ping" if ping_message is Empty else ping_message
        send_timeout = None if send_timeout is Empty else send_timeout
        cleanup_timeout = DEFAULT_CLEANUP_TIMEOUT if cleanup_timeout is Empty else cleanup_timeout
        sep = DEFAULT_SEPARATOR if sep is Empty else sep
        error_event = None if error_event is Empty else error_event
        super().__init__(
            content,
            background=background,
            cookies=cookies,
            encoding=encoding,
            headers=headers,
            media_type="text/event-stream",
            status_code=status_code,
            send_timeout=send_timeout,
            on_disconnect=on_disconnect,
            type_encoders=type_encoders,
            cleanup_timeout=cleanup_timeout,
        )
        # Validate every field now, naming the argument in the error.
        with improperly_configured():
            if event_type is not None:
                check_event_type(event_type, "event_type")
            if event_id is not None:
                check_event_id(event_id, "event_id")
            if retry_duration is not None:
                check_retry(retry_duration, "retry_duration")
            if comment_message is not None:
                check_comment(comment_message, "comment_message")
            # The rules an app's SSEConfig and a route's settings follow, for these fields.
            stream_settings = check_stream_defaults(
                {
                    "ping_interval": ping_interval,
                    "ping_message": ping_message,
                    "sep": sep,
                    "error_event": error_event,
                }
            )
        self.event_type = event_type
        self.event_id = event_id
        self.retry_duration = retry_duration
        self.comment_message = comment_message
        self.ping_interval: float | None = stream_settings["ping_interval"]
        self.ping_message = ping_message
        self.sep = sep
        self.error_event: ErrorEvent | None = error_event
        # Cache-Control and X-Accel-Buffering defaults are added by the ASGI response, below
        # the app's SSEConfig.headers, which may override them.

    def to_asgi_response(
        self,
        app: Litestar | Request[Any, Any, Any] | None = None,
        request: Request[Any, Any, Any] | None = None,
        *,
        background: BackgroundTask | BackgroundTasks | None = None,
        cookies: Iterable[Cookie] | None = None,
        encoded_headers: Iterable[tuple[bytes, bytes]] | None = None,
        headers: dict[str, str] | None = None,
        is_head_response: bool = False,
        media_type: MediaType | str | None = None,
        status_code: int | None = None,
        type_encoders: TypeEncodersMap | None = None,
    ) -> ASGIResponse:
        """Build the :class:`~litestar_sse.asgi.ASGIStreamingSSEResponse` that sends this stream.

        Takes the installed Litestar's signature, as :meth:`Stream.to_asgi_response` does.
        """
        request, kwargs = self._asgi_kwargs(
            app,
            request,
            background,
            cookies,
            encoded_headers,
            headers,
            is_head_response,
            "text/event-stream",
            status_code,
        )
        ping_interval, ping_message = self.ping_interval, self.ping_message
        retry, sep, error_event = self.retry_duration, self.sep, self.error_event
        preamble = b""
        host = stream_host(request)
        if host is not None:
            unset, config = self._app_defaults, self.stream_defaults(host.config)
            if unset:
                if "sep" in unset:
                    sep = config.sep
                if "ping_interval" in unset:
                    ping_interval = config.ping_interval
                if "ping_message" in unset:
                    ping_message = config.ping_message
                if "retry_duration" in unset and config.retry is not None:
                    # Sent once when the stream opens, not with every event: a field line and
                    # no blank line, read at once and part of the first event (a lone retry
                    # block is an empty event to some decoders).
                    preamble = encode_fields(retry=config.retry, sep=sep)
                if "send_timeout" in unset:
                    kwargs["send_timeout"] = config.send_timeout
                if "cleanup_timeout" in unset:
                    kwargs["cleanup_timeout"] = config.cleanup_timeout
                if "error_event" in unset:
                    error_event = config.error_event
            kwargs["headers"] = host.merge_headers(kwargs["headers"])
        encoders = {**(type_encoders or {}), **(self.response_type_encoders or {})}
        fields: dict[str, Any] = {
            "event": self.event_type,
            "id": self.event_id,
            "retry": retry,
            "comment": self.comment_message,
            "sep": sep,
            "json_encode": json_encoder(encoders),
        }
        wire = wire_chunks_of(kwargs["iterator"])
        if wire is None:
            kwargs["item_encoder"] = self.make_item_encoder(**fields)
        else:  # whole events' bytes already (a broadcast subscription): sent as they are
            kwargs["iterator"], kwargs["item_encoder"] = wire, SEND_AS_IS
        if error_event is not None:
            # Encoded like an untyped item (a typed stream's checks do not apply to it).
            kwargs["on_error"] = _ErrorEncoder(error_event, make_item_encoder(**fields))
        response: ASGIStreamingSSEResponse
        if host is None:
            response = ASGIStreamingSSEResponse(
                ping_interval=ping_interval, ping_message=ping_message, sep=sep, **kwargs
            )
        else:
            response = host.open_stream(
                request,
                preamble=preamble,
                ping_interval=ping_interval,
                ping_message=ping_message,
                sep=sep,
                **kwargs,
            )
        response.add_keep_alive(request.scope)
        return response

    def stream_defaults(self, config: StreamDefaults) -> StreamDefaults:
        """The defaults for what this response leaves unset: the app's ``config``.

        The plugin's generator handlers put their route's settings over it.
        """
        return config

    def make_item_encoder(
        self,
        *,
        event: str | None,
        id: str | int | None,
        retry: int | None,
        comment: str | None,
        sep: str,
        json_encode: Callable[[Any], bytes],
    ) -> ItemEncoder:
        """Return the function that turns each item into the bytes of one event.

        Called once per response with the resolved response-level fields; override it to
        change how items are encoded (the plugin's generator handlers validate typed items
        here).
        """
        return make_item_encoder(
            event=event, id=id, retry=retry, comment=comment, sep=sep, json_encode=json_encode
        )


class _ErrorEncoder:
    """The ``on_error`` of the ASGI response: the error event's bytes for an exception."""

    __slots__ = ("encode", "error_event")

    def __init__(self, error_event: ErrorEvent, encode: ItemEncoder) -> None:
        self.error_event = error_event
        self.encode = encode

    def __call__(self, exc: Exception) -> bytes:
        item = self.error_event(exc)
        return b"" if item is None else self.encode(item)
