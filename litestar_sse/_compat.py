"""Every place litestar_sse depends on a Litestar private name or on a version's behaviour.

Litestar 2 (2.23 through 2.25) and Litestar 3 (3.0.0b0, its main branch) differ where this
package meets them: the signature of ``Response.to_asgi_response`` (Litestar 3 dropped the
deprecated ``app`` argument), ``ASGIResponse.__init__`` (Litestar 3 dropped
``encoded_headers``), when a route handler builds its response functions (lazily on the first
request in 2, at registration in 3), and how the test clients run the app (a blocking portal per
request in 2; one portal for the sync client's life, and the test's own event loop for the async
client, in 3).

Nothing else in the package reads ``litestar.__version__`` or touches a private Litestar name;
``tests/test_compat.py`` checks each touch point below against the installed Litestar, so a
Litestar release that changes one fails there, by name, first.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from types import CodeType
from typing import TYPE_CHECKING, Any, Final

import litestar
from litestar.response.base import ASGIResponse
from litestar.types import Empty

if TYPE_CHECKING:
    from anyio.from_thread import BlockingPortal
    from litestar._openapi.schema_generation import SchemaCreator as SchemaCreator
    from litestar.app import Litestar
    from litestar.connection import Request
    from litestar.handlers.http_handlers import HTTPRouteHandler
    from litestar.response import Response
    from litestar.testing import AsyncTestClient, TestClient
    from litestar.types import ExceptionHandler, ExceptionHandlersMap, Send

__all__ = (
    "ANSWERS_EVERY_EXCEPTION",
    "LITESTAR_3",
    "add_route_exception_handler",
    "async_client_portal",
    "build_asgi_response",
    "client_portal",
    "client_scope",
    "route_exception_handlers",
    "set_handler_response",
    "split_to_asgi_args",
    "unwrap_started_send",
)

LITESTAR_3: Final = litestar.__version__.major >= 3
"""Whether the installed Litestar is 3.x."""

ANSWERS_EVERY_EXCEPTION: Final = not LITESTAR_3
"""Whether Litestar answers an exception no handler takes, HTTP or not, with its own response.

Litestar 2 answers any exception with a ``500`` response; Litestar 3 answers HTTP exceptions and,
in debug mode, any exception, and otherwise lets the others reach the server.
"""


def build_asgi_response(
    response: ASGIResponse,
    *,
    encoded_headers: Iterable[tuple[bytes, bytes]] | None,
    headers: dict[str, Any] | None,
    **kwargs: Any,
) -> None:
    """Run :class:`~litestar.response.base.ASGIResponse`'s own ``__init__`` on ``response``.

    The streaming responses skip Litestar's ``ASGIStreamingResponse.__init__`` (it wraps a sync
    iterator in a thread hop per item) and call its base's directly. ``encoded_headers`` is
    passed on where Litestar still takes it (2.x); on 3.x it is merged into ``headers``.
    """
    if not LITESTAR_3:
        ASGIResponse.__init__(response, encoded_headers=encoded_headers, headers=headers, **kwargs)
        return
    if encoded_headers:
        merged: list[tuple[str, str]] = list((headers or {}).items())
        merged.extend(
            (name.decode("latin-1"), value.decode("latin-1")) for name, value in encoded_headers
        )
        ASGIResponse.__init__(response, headers=merged, **kwargs)
        return
    ASGIResponse.__init__(response, headers=headers, **kwargs)


def split_to_asgi_args(
    app_or_request: Litestar | Request[Any, Any, Any] | None,
    request: Request[Any, Any, Any] | None,
) -> Request[Any, Any, Any]:
    """The request of a ``to_asgi_response`` call, whichever Litestar's signature it used.

    Litestar 2 calls ``to_asgi_response(app, request, ...)`` (``app`` deprecated, ``None`` in
    practice); Litestar 3 calls ``to_asgi_response(request, ...)``. Both pass them by keyword.
    """
    if request is not None:
        return request
    if app_or_request is None or not hasattr(app_or_request, "scope"):
        raise TypeError("to_asgi_response() needs the request")
    return app_or_request  # type: ignore[return-value]


def set_handler_response(
    handler: HTTPRouteHandler,
    *,
    media_type: str | None = None,
    response_class: type[Response[Any]] | None = None,
) -> None:
    """Give a registered route handler another media type and/or response class.

    Called from ``ReceiveRoutePlugin.receive_route``. Litestar 2 builds a handler's response
    functions on its first request and memoizes them in a dict shared by the per-app copies of
    the handler: this app's copy gets a fresh one. Litestar 3 built them already, at
    registration, and exposes ``response_class`` as a read-only property: they are built again.
    """
    if media_type is not None:
        handler.media_type = media_type
    if LITESTAR_3:
        if response_class is not None:
            handler._response_class = response_class  # type: ignore[attr-defined,unused-ignore]
        if handler._default_response_handler is not Empty:  # type: ignore[attr-defined,unused-ignore]
            handlers = handler._create_response_handlers(  # type: ignore[attr-defined,unused-ignore]
                media_type=handler.media_type,
                response_class=handler.response_class,
                cookies=handler.response_cookies,
                headers=handler.response_headers,
                type_encoders=handler.type_encoders,
                return_type=handler.parsed_fn_signature.return_type,
                status_code=handler.status_code,
                background=handler.background,
                after_request=handler.after_request,
            )
            handler._default_response_handler, handler._response_type_handler = handlers  # type: ignore[attr-defined,unused-ignore]
        return
    if response_class is not None:
        handler.response_class = response_class
    # Litestar registers a shallow copy of each handler per app, and the copies share the dict
    # in which the handler memoizes how it builds responses. Give this app's copy its own, so
    # that neither a previous app's choice applies here nor this one leaks into other apps.
    handler._response_handler_mapping = {  # type: ignore[attr-defined,unused-ignore]
        "default_handler": Empty,
        "response_type_handler": Empty,
    }
    handler._resolved_response_class = Empty  # type: ignore[attr-defined,unused-ignore]


@contextlib.contextmanager
def client_portal(client: TestClient[Any]) -> Iterator[BlockingPortal]:
    """The blocking portal whose event loop runs the app of a sync ``TestClient``."""
    portal = getattr(client, "portal", None)
    if portal is not None:  # Litestar 2: one portal per use, shared while the client is entered
        with portal() as opened:
            yield opened
        return
    yield client.blocking_portal  # type: ignore[attr-defined,unused-ignore]


@contextlib.contextmanager
def async_client_portal(client: AsyncTestClient[Any]) -> Iterator[BlockingPortal | None]:
    """The portal that runs the app of an ``AsyncTestClient``, or ``None``: the test's loop.

    Litestar 2 runs the app (and its lifespan) on a blocking portal's loop in another thread;
    Litestar 3 runs it on the event loop of the test itself.
    """
    portal = getattr(client, "portal", None)
    if portal is None:
        yield None
        return
    with portal() as opened:
        yield opened


def client_scope(client: TestClient[Any] | AsyncTestClient[Any], request: Any) -> dict[str, Any]:
    """The ASGI scope the client's transport would build for an ``httpx.Request``."""
    from litestar.testing.transport import TestClientTransport

    transport = getattr(client, "_transport", None)
    # Litestar 3's sync client wraps the async transport in a sync one.
    transport = getattr(transport, "_async_transport", transport)
    if not isinstance(transport, TestClientTransport):
        transport = TestClientTransport(client)
    scope: dict[str, Any] = transport.parse_request(request)
    return scope


def route_exception_handlers(handler: HTTPRouteHandler) -> ExceptionHandlersMap:
    """The exception handlers a registered route handler uses: its own and its layers'.

    Litestar 2 merges the layers on each request (``resolve_exception_handlers``); Litestar 3
    merged them into the handler's ``exception_handlers`` at registration.
    """
    if LITESTAR_3:
        return dict(handler.exception_handlers or {})
    return handler.resolve_exception_handlers()


def add_route_exception_handler(
    handler: HTTPRouteHandler, key: int | type[Exception], exception_handler: ExceptionHandler[Any]
) -> None:
    """Give one registered route handler one more exception handler, on this app's copy only.

    A new dict is assigned: Litestar 2's per-app copy of a handler shares its dicts with the
    handler the app was given.
    """
    handler.exception_handlers = {**(handler.exception_handlers or {}), key: exception_handler}


def _started_send_wrappers() -> frozenset[CodeType]:
    """The code of the ``send`` wrapper Litestar's exception middleware puts around every
    HTTP response (at the app and at each route): it notes that the response started, then
    sends. Only a wrapper that does exactly that is known here (its closure holds
    ``scope_state`` and ``send``, it reads the one attribute ``response_started``): one that
    does more in a future Litestar is never skipped."""
    from litestar.middleware._internal.exceptions.middleware import ExceptionHandlerMiddleware

    return frozenset(
        code
        for code in ExceptionHandlerMiddleware.__call__.__code__.co_consts
        if isinstance(code, CodeType)
        and sorted(code.co_freevars) == ["scope_state", "send"]
        and code.co_names == ("response_started",)
    )


_STARTED_SEND_WRAPPERS: Final = _started_send_wrappers()


def unwrap_started_send(send: Send) -> Send:
    """``send`` without the exception middleware's wrappers, for a response whose start
    went through them already: from then on each only passes the message on (a coroutine
    frame per send, and two of them per response). Any other wrapper (a user's middleware)
    stops the unwrapping there, so no code but Litestar's no-op is skipped."""
    wrappers = _STARTED_SEND_WRAPPERS
    function: Any = send
    while getattr(function, "__code__", None) in wrappers:
        code = function.__code__
        function = function.__closure__[code.co_freevars.index("send")].cell_contents
    return function  # type: ignore[no-any-return]
