"""HTTP errors on event-stream routes say what they are: JSON, not ``text/event-stream``.

Litestar builds the response of an exception nobody handles (a guard's ``401``, a ``400`` for
a malformed body, a ``404`` raised before the stream starts, ``authorize``'s ``403``) with
the media type of the route it happened on. On an event-stream route that labels Litestar's
JSON error body ``text/event-stream``, which no client can read as either. The plugin gives
each event-stream route a fallback handler that builds the same response Litestar would and
labels it ``application/json``.

Only the gaps are filled: a handler of the app, a router, a controller or the route for a
status code or an exception type still wins over the fallback, as it would over Litestar's
default, and a ``500`` handler still gets the exceptions that are not HTTP ones. In debug mode
a server error gets Litestar's debug page, as anywhere else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar.enums import MediaType
from litestar.exceptions import HTTPException
from litestar.exceptions.responses import create_debug_response, create_exception_response
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from litestar_sse._compat import (
    ANSWERS_EVERY_EXCEPTION,
    add_route_exception_handler,
    route_exception_handlers,
)

if TYPE_CHECKING:
    from litestar.connection import Request
    from litestar.handlers.http_handlers import HTTPRouteHandler
    from litestar.response import Response

__all__ = ("json_error_response", "label_error_responses")


def json_error_response(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Litestar's default response for ``exc``, labelled as the JSON it is."""
    status = exc.status_code if isinstance(exc, HTTPException) else HTTP_500_INTERNAL_SERVER_ERROR
    if status == HTTP_500_INTERNAL_SERVER_ERROR and request.app.debug:
        return create_debug_response(request, exc)  # HTML, JSON or text, as the client accepts
    response = create_exception_response(request, exc)
    # Litestar encoded the body as JSON already (it does for any media type but JSON's).
    response.media_type = MediaType.JSON
    return response


def label_error_responses(handler: HTTPRouteHandler) -> None:
    """Let ``handler``'s unhandled exceptions answer with ``application/json``.

    The fallback goes only where Litestar would use its default: under ``HTTPException`` if no
    layer handles it or a base class of it (status-code handlers and narrower classes are
    looked up first and still win), and under ``Exception`` if no layer handles the status
    ``500`` (Litestar 2's catch-all for exceptions that are not HTTP ones; Litestar 3 lets
    those reach the server, outside debug mode, and so does the fallback). A layer handling
    ``Exception`` decides everything.
    """
    resolved = route_exception_handlers(handler)

    def handled(exception: type[Exception]) -> bool:  # by a handler of it or of a base class
        return any(isinstance(key, type) and issubclass(exception, key) for key in resolved)

    if handled(Exception):
        return
    if not handled(HTTPException):
        add_route_exception_handler(handler, HTTPException, json_error_response)
    if ANSWERS_EVERY_EXCEPTION and HTTP_500_INTERNAL_SERVER_ERROR not in resolved:
        add_route_exception_handler(handler, Exception, json_error_response)
