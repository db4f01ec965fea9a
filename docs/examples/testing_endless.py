"""A test for a stream that never ends: read the first events, then hang up."""

from itertools import islice

from first_stream import app
from litestar.testing import TestClient

from litestar_sse.testing import sse_stream


def test_first_two_counts() -> None:
    with TestClient(app) as client, sse_stream(client, "GET", "/count?limit=1000") as stream:
        first, second = islice(stream, 2)  # parsed events, as they arrive
    # Leaving the block disconnected the client: the app closed its generator.
    assert (first.event, first.data) == ("count", "1")
    assert (second.event, second.data) == ("count", "2")
