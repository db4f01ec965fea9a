"""Any HTTP client will do: feed the body to an EventDecoder as it arrives."""

import httpx

from litestar_sse.codec import DecodedEvent, EventDecoder


def first_events(client: httpx.Client, url: str, count: int) -> list[DecodedEvent]:
    """The first ``count`` events of the stream at ``url`` (a live server, a test client)."""
    decoder = EventDecoder()
    events: list[DecodedEvent] = []
    with client.stream("GET", url) as response:
        response.raise_for_status()
        for chunk in response.iter_bytes():
            events.extend(decoder.feed(chunk))  # chunks may split events anywhere
            if len(events) >= count:
                break  # leaving the block closes the connection
    return events[:count]
