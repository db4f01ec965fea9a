"""``SSEConfig``: app-wide defaults for every event stream, and the state an app keeps of them.

The response layer defines the hook (:class:`~litestar_sse._response.StreamHost`) and never
imports this module: the plugin stores an :class:`AppSSE`, which implements it, in the app's
``state`` when the app is created. A response finds it with one dict access, and gets ``None``
(every default exactly as without the plugin) in an app without it.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol

from litestar_sse._error_events import ErrorEvent
from litestar_sse._message import RawEvent, ServerSentEventMessage
from litestar_sse._plugin.registry import ManagedSSEResponse, StreamRegistry
from litestar_sse._response import (
    STREAM_DEFAULT_FIELDS,
    STREAM_HOST_KEY,
    check_stream_defaults,
    stream_host,
)
from litestar_sse._validation import check_count, check_seconds
from litestar_sse.asgi._stream import DEFAULT_CLEANUP_TIMEOUT
from litestar_sse.codec._encoder import DEFAULT_SEPARATOR

if TYPE_CHECKING:
    from litestar.config.app import AppConfig
    from litestar.connection import Request

__all__ = ("STATE_KEY", "AppSSE", "AppService", "SSEConfig", "client_address", "get_app_sse")

STATE_KEY: Final = STREAM_HOST_KEY
"""Key of the :class:`AppSSE` in ``app.state``."""

IPV6_CLIENT_PREFIX: Final = 64
"""Bits of an IPv6 address that make one client for :func:`client_address`: a /64 is what one
subscriber (a home, a phone, a server) is given, and holds 2**64 addresses of its own."""

_logger: Final = logging.getLogger("litestar_sse")


class AppService(Protocol):
    """What joins an app through :class:`SSEConfig` besides settings: the ``broadcaster``.

    The plugin calls :meth:`join_app` once per app, when the app is created, before it adds its
    own shutdown lifespan (so the service's lifespan is entered first and exited last). The
    service registers what it needs itself (dependencies, lifespans, signature names): the
    plugin layer never imports the layers above it.
    """

    def join_app(self, app_config: AppConfig, config: SSEConfig) -> None:
        """Add the service to the app being created, with the app's SSE settings."""
        ...


def client_address(request: Request[Any, Any, Any]) -> Hashable:
    """The client's address as the server reports it (``None`` when it reports none).

    An IPv6 client is its /64 network (:data:`IPV6_CLIENT_PREFIX`), since one host may use any
    address of the /64 it was given, and an IPv4-mapped IPv6 address is its IPv4 address. What
    the server reports behind a proxy depends on the server's proxy-header settings (see
    :attr:`SSEConfig.max_connections_per_client`).
    """
    client = request.scope.get("client")
    if not client:
        return None
    host = client[0]
    if not isinstance(host, str) or ":" not in host:
        return host
    try:
        address = ipaddress.IPv6Address(host.split("%", 1)[0])
    except ValueError:
        return host
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(ipaddress.IPv6Network((address, IPV6_CLIENT_PREFIX), strict=False))


@dataclass
class SSEConfig:
    """App-wide defaults for Server-Sent Events, passed to :class:`~litestar_sse.SSEPlugin`.

    A :class:`~litestar_sse.ServerSentEvent` (and a generator handler) uses these values for
    every argument it does not set itself: an explicit argument always wins, including an
    explicit ``None`` (for example ``ServerSentEvent(..., ping_interval=None)`` turns pings off
    for that response even when the app pings). Values are validated when the config is
    created.

    Attributes:
        ping_interval: Seconds without any write after which a comment ping is sent, so that
            proxies and load balancers do not drop an idle stream. ``None`` disables pings.
        ping_message: The text of the ping comment (``: ping``).
        retry: Reconnection time in milliseconds for clients, sent once when a stream opens (a
            ``retry:`` block before the first event) unless the response sets its own
            ``retry_duration``, which is sent with every event as before. ``None`` sends none;
            browsers then wait about 3 s before reconnecting.
        sep: Line separator of events and pings: ``"\\r\\n"``, ``"\\n"`` or ``"\\r"``.
        send_timeout: Seconds one send (pings included) may take before the client is
            considered gone and the stream is closed: 30 by default, so a client that stopped
            reading never holds a stream (and what it buffers) for ever. ``None`` waits forever.
        cleanup_timeout: Seconds a stopped producer's cleanup may take (a generator's
            ``finally`` that awaits: a database call, a lock, a network call without a
            timeout) before it is cancelled, with a warning on the ``litestar_sse`` logger that
            names the route and counted in ``litestar_sse_cleanups_cut_total``. 5 by default,
            the default ``shutdown_grace_period``: a hung cleanup holds its request no longer
            than a shutdown waits for a stream. A sync generator's close, which runs in its
            worker thread and cannot be interrupted, gives its thread's slot back after it.
            ``None`` waits for ever.
        headers: Extra response headers for every event stream. Headers set on the response
            or the route (``response_headers``) win; these may override the defaults
            ``Cache-Control: no-cache`` and ``X-Accel-Buffering: no``.
        max_connections: Most event streams open at once in this app (per process). Beyond it
            a new stream is answered ``503 Service Unavailable`` with ``Retry-After``, before
            any byte of the stream is sent. ``None`` means no limit. Note that a browser's
            ``EventSource`` does not reconnect after a 503: its ``error`` handler must.
        max_connections_per_client: Most event streams open at once for one client (per
            process), as told by ``client_key``; beyond it that client's new streams are
            answered ``503`` with ``Retry-After``. ``None`` (the default) means no limit. Turn it
            on only where ``client_key`` tells clients apart: behind a proxy every client has the
            proxy's address unless the server is told to trust the proxy's
            ``X-Forwarded-For`` (``uvicorn --proxy-headers --forwarded-allow-ips ...``). Note
            that uvicorn trusts ``X-Forwarded-For`` from 127.0.0.1 by default: a client that
            can reach the server from the loopback (or through a proxy on it that passes the
            header on) chooses its own address; start it with ``--no-proxy-headers`` where no
            trusted proxy sits there. On a Unix socket the server reports no address: every
            request is then uncounted, and the first one logs a warning naming ``client_key``.
        client_key: What a client is, for ``max_connections_per_client``: a callable of the
            request returning a hashable key, ``None`` for "not counted". The default,
            :func:`client_address`, is the client's address as the server reports it (an
            IPv6 client's /64 network); an authenticated identity (a user or API key id) is a
            better key where there is one.
        retry_after: The ``Retry-After`` value, in seconds, of that 503.
        max_lifetime: Seconds after which a stream is ended cleanly (the event being sent
            completes, then ``lifetime_event`` if set, then the end of the body): an hour by
            default. A stream that has not ended ``shutdown_grace_period`` seconds later (its
            client does not read, whatever ``send_timeout`` says) is ended hard: its write and
            its producer's cleanup are cut, and a connection still holding bytes the client
            did not take is reset. Clients reconnect with ``Last-Event-ID``, which rebalances
            long-lived connections across servers, bounds per-connection state, and frees every
            stream of a client that holds connections without reading. ``None`` means no limit.
        lifetime_event: An event sent just before a stream ends for ``max_lifetime``.
        shutdown_grace_period: Seconds every open stream gets to end cleanly once the server
            shuts down (see :class:`~litestar_sse.SSEPlugin`), or once it reached
            ``max_lifetime``; streams still open then are ended hard: their write and their
            producer's cleanup are cut, and the connections of clients that do not read are
            reset, so the server can exit without a graceful timeout of its own.
        shutdown_event: An event sent to every open stream when the server shuts down, before
            the end of its body; e.g. ``ServerSentEventMessage(event="shutdown", data="",
            retry=5000)`` to make clients wait a little before they reconnect.
        install_signal_handlers: Chain a handler to the SIGINT and SIGTERM handlers the server
            installed, so streams end as soon as the server is told to stop (uvicorn waits for
            open responses *before* it runs the app's shutdown hooks). Only done when the app
            starts in the main thread.
        last_event_id_query_param: Query parameter read by the ``last_event_id`` dependency
            when the request has no ``Last-Event-ID`` header (a browser's first connection
            cannot send headers). ``None`` reads the header only.
        max_last_event_id_length: Longest accepted last event id, in characters. A longer one
            is treated as absent.
        openapi_item_schema: Describe streams with OpenAPI 3.2's ``itemSchema`` instead of
            ``schema``. Litestar (2.x and 3.0) labels its document OpenAPI 3.1.0, whose
            validators reject ``itemSchema``; turn this on only if you publish the document
            as 3.2.
        broadcaster: A :class:`~litestar_sse.broadcast.Broadcaster` for the app: handlers get
            it as the ``broadcaster`` dependency (an app dependency of that name is kept
            instead), it is started with the app's lifespan (before the ``on_startup`` hooks)
            and closed when the lifespan ends, after the open streams had their graceful end.
            Unless it sets them itself, it takes ``sep`` and the app's ``type_encoders``.
        error_event: Called with the exception when a stream's producer raises (a bad item
            included), after it is logged; the item it returns is sent as the stream's last
            event, so clients see the failure instead of a stream that looks complete.
            :func:`~litestar_sse._error_events.openai_error` and
            :func:`~litestar_sse._error_events.anthropic_error` build the error events of those
            APIs. ``None`` (the default) just ends the body.
    """

    ping_interval: float | None = 15.0
    ping_message: str = "ping"
    retry: int | None = None
    sep: str = DEFAULT_SEPARATOR
    send_timeout: float | None = 30.0
    cleanup_timeout: float | None = DEFAULT_CLEANUP_TIMEOUT
    headers: Mapping[str, str] = field(default_factory=dict)
    max_connections: int | None = None
    max_connections_per_client: int | None = None
    client_key: Callable[[Request[Any, Any, Any]], Hashable] = client_address
    retry_after: int = 5
    max_lifetime: float | None = 3600.0
    lifetime_event: ServerSentEventMessage | RawEvent | None = None
    shutdown_grace_period: float = 5.0
    shutdown_event: ServerSentEventMessage | RawEvent | None = None
    install_signal_handlers: bool = True
    last_event_id_query_param: str | None = "lastEventId"
    max_last_event_id_length: int = 1024
    openapi_item_schema: bool = False
    broadcaster: AppService | None = None
    error_event: ErrorEvent | None = None

    def __post_init__(self) -> None:
        stream = check_stream_defaults(
            {name: getattr(self, name) for name in STREAM_DEFAULT_FIELDS}
        )
        self.ping_interval, self.send_timeout = stream["ping_interval"], stream["send_timeout"]
        self.cleanup_timeout = stream["cleanup_timeout"]
        for name, value in self.headers.items():
            if not isinstance(name, str) or not isinstance(value, str):
                raise TypeError(f"headers must map str to str, got {name!r}: {value!r}")
        self.max_connections = check_count(self.max_connections, "max_connections", minimum=1)
        self.max_connections_per_client = check_count(
            self.max_connections_per_client, "max_connections_per_client", minimum=1
        )
        if not callable(self.client_key):
            raise TypeError(f"client_key must be callable, got {type(self.client_key).__name__}")
        check_count(self.retry_after, "retry_after", minimum=0)
        self.max_lifetime = check_seconds(self.max_lifetime, "max_lifetime")
        grace = check_seconds(self.shutdown_grace_period, "shutdown_grace_period", zero=True)
        if grace is None:
            raise ValueError("shutdown_grace_period must be a number of seconds, not None")
        self.shutdown_grace_period = grace
        for name in ("lifetime_event", "shutdown_event"):
            event = getattr(self, name)
            if event is not None and not isinstance(event, (ServerSentEventMessage, RawEvent)):
                raise TypeError(
                    f"{name} must be a ServerSentEventMessage, a RawEvent or None, "
                    f"got {type(event).__name__}"
                )
        if self.last_event_id_query_param is not None and not self.last_event_id_query_param:
            raise ValueError("last_event_id_query_param must be a non-empty str or None")
        check_count(self.max_last_event_id_length, "max_last_event_id_length", minimum=1)
        service = self.broadcaster
        if service is not None and (
            isinstance(service, type) or not callable(getattr(service, "join_app", None))
        ):
            raise TypeError(
                f"broadcaster must be a Broadcaster (an instance) or None, got {service!r}"
            )


class AppSSE:
    """The settings and the open streams of one app, as a response sees them.

    Attributes:
        config: The app's :class:`SSEConfig`.
        registry: The app's open event streams.
        headers: ``config.headers`` with lower-cased names, for merging per response.
    """

    __slots__ = ("__weakref__", "_keyless_told", "config", "headers", "registry")

    def __init__(self, config: SSEConfig) -> None:
        self.config = config
        self.headers = {name.lower(): value for name, value in config.headers.items()}
        self._keyless_told = False
        self.registry = StreamRegistry(
            max_connections=config.max_connections,
            max_connections_per_client=config.max_connections_per_client,
            retry_after=config.retry_after,
            max_lifetime=config.max_lifetime,
            lifetime_event=_encode(config.lifetime_event, config.sep),
            shutdown_event=_encode(config.shutdown_event, config.sep),
            grace_period=config.shutdown_grace_period,
        )

    def open_stream(
        self, request: Request[Any, Any, Any], *, preamble: bytes, **kwargs: Any
    ) -> ManagedSSEResponse:
        """The ASGI response of one of the app's streams, counted in its :attr:`registry`."""
        config = self.config
        client = None
        if config.max_connections_per_client is not None:
            client = config.client_key(request)
            if client is None and not self._keyless_told:
                self._keyless_told = True  # once per app: the cause is the deployment's
                _logger.warning(
                    "max_connections_per_client is on, but client_key found no client for "
                    "%s %s (a Unix socket, or a server that reports no address): such streams "
                    "are not counted per client. Pass SSEConfig(client_key=...) that returns "
                    "an identity (a user id, an API key id, a trusted proxy header)",
                    request.method,
                    request.url.path,
                )
        return ManagedSSEResponse(
            registry=self.registry,
            client=client,
            preamble=preamble,
            # A compressing middleware holds the headers back until the first body chunk.
            flush_headers=request.app.compression_config is not None,
            **kwargs,
        )

    def merge_headers(self, headers: Mapping[str, Any]) -> dict[str, Any]:
        """Return ``headers`` over the config's extra headers, names compared case-insensitively."""
        if not self.headers:
            return dict(headers)
        own = {name.lower() for name in headers}
        merged = {name: value for name, value in self.headers.items() if name not in own}
        merged.update(headers)
        return merged


def _encode(event: ServerSentEventMessage | RawEvent | None, sep: str) -> bytes:
    if event is None:
        return b""
    return event.encode() if isinstance(event, RawEvent) else event.encode(sep=sep)


def get_app_sse(request: Request[Any, Any, Any]) -> AppSSE | None:
    """Return the SSE settings of the request's app, or ``None`` without the plugin."""
    host = stream_host(request)
    return host if isinstance(host, AppSSE) else None
