"""Layer 6, the responses a handler returns: ``Stream`` and ``ServerSentEvent``.

* :mod:`~litestar_sse._response.stream`: ``Stream``, a streamed body of chunks;
* :mod:`~litestar_sse._response.sse`: ``ServerSentEvent``, a stream of events;
* :mod:`~litestar_sse._response.host`: the hook through which an app (the plugin) gives its
  streams defaults and a home.
"""

from litestar_sse._response.host import (
    STREAM_DEFAULT_FIELDS,
    STREAM_HOST_KEY,
    StreamDefaults,
    StreamHost,
    check_stream_defaults,
    stream_host,
)
from litestar_sse._response.sse import ServerSentEvent
from litestar_sse._response.stream import Stream, StreamContent, StreamContentError

__all__ = (
    "STREAM_DEFAULT_FIELDS",
    "STREAM_HOST_KEY",
    "ServerSentEvent",
    "Stream",
    "StreamContent",
    "StreamContentError",
    "StreamDefaults",
    "StreamHost",
    "check_stream_defaults",
    "stream_host",
)
