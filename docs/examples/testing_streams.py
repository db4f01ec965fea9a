"""A test for the first stream: Litestar's TestClient and the package's decoder."""

from first_stream import app
from litestar.testing import TestClient

from litestar_sse.codec import DecodedEvent, decode_stream


def test_count() -> None:
    with TestClient(app) as client:
        response = client.get("/count?limit=2")  # the stream ends, so the client returns

    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert decode_stream(response.content) == [
        DecodedEvent(data="1", event="count"),
        DecodedEvent(data="2", event="count"),
    ]
