"""Cleanup in a sync generator: it is closed in the worker thread that runs it."""

import queue
import threading
from collections.abc import Iterator

from litestar import Litestar, get

from litestar_sse import ServerSentEvent, ServerSentEventMessage

readings: queue.Queue[float] = queue.Queue()
closed_in: list[str] = []  # the thread each generator's ``finally`` ran in

# A comment: no client sees an event, a proxy sees traffic.
IDLE = ServerSentEventMessage(data=None, comment="idle")


def next_reading(timeout: float) -> float | None:
    try:
        return readings.get(timeout=timeout)
    except queue.Empty:
        return None


def sensor_feed() -> Iterator[float | ServerSentEventMessage]:
    try:
        while True:
            reading = next_reading(timeout=1.0)
            # A blocked generator cannot be interrupted: it is closed at its next yield.
            # Yielding at least once a second bounds how long a dropped stream lingers.
            yield IDLE if reading is None else reading
    finally:
        closed_in.append(threading.current_thread().name)


@get("/sensor", sync_to_thread=False)
def sensor() -> ServerSentEvent:
    return ServerSentEvent(sensor_feed(), event_type="reading")


app = Litestar([sensor])
