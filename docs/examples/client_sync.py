"""The same reading from synchronous code."""

from litestar_sse.client import Event, SyncEventSource


def first_events(url: str, count: int) -> list[str]:
    got: list[str] = []
    with SyncEventSource(url) as source:
        for item in source:
            if isinstance(item, Event):
                got.append(item.data)
            if len(got) == count:
                break  # leaving the `with` ends the request at once
    return got
