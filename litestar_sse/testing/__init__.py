"""Test helpers: open an event stream with Litestar's test clients and read parsed events.

Litestar's ``TestClient`` runs the app until the response is complete before it returns, so an
endless stream would never return. :func:`sse_stream` instead runs the app for one request on
the client's event loop (its blocking portal, where the app's lifespan runs too) and hands every
body chunk over as it is sent; leaving the ``with`` block disconnects, as a browser closing the
page does, so the app sees ``http.disconnect`` and closes its producer.

Example:
    .. code-block:: python

        from itertools import islice

        from litestar.testing import TestClient
        from litestar_sse.testing import sse_stream

        with TestClient(app) as client:
            with sse_stream(client, "GET", "/events", last_event_id="41") as stream:
                assert stream.status_code == 200
                first, second = islice(stream, 2)  # DecodedEvent objects
                assert stream.comments == []  # pings seen so far

The async variant :func:`async_sse_stream` works the same with ``AsyncTestClient``:
``async with async_sse_stream(client, "GET", "/events") as stream: async for event in stream``.

Events are parsed by :class:`~litestar_sse.codec.EventDecoder`, exactly as a browser would.
"""

from litestar_sse.testing._streams import AsyncSSEStream, SSEStream, async_sse_stream, sse_stream

__all__ = ("AsyncSSEStream", "SSEStream", "async_sse_stream", "sse_stream")
