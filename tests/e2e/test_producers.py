"""Producers that raise, block or never yield, under a real uvicorn.

Each ends or pings as docs/disconnects-and-cleanup.rst and docs/pings-and-timeouts.rst say:
an error ends the body cleanly and is logged once; a producer that is waiting (on an ``await``
or blocked in its worker thread) keeps getting pings; a client that leaves meanwhile ends the
response at once, and a blocked sync producer is closed, in its own thread, at its next yield.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from litestar_sse.codec._decoder import DecodedComment, DecodedEvent, EventDecoder
from tests.e2e import producer_app
from tests.e2e.live_server import Server, live_server
from tests.polling import wait_until_sync

PING = DecodedComment("ping")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with live_server("tests.e2e.producer_app:app", tmp_path_factory.mktemp("uvicorn")) as server:
        yield server


def new_key() -> str:
    return uuid.uuid4().hex[:12]


class Reader:
    """Reads one stream in a thread: what arrived (events and comments, with arrival times)
    and whether the body ended cleanly. ``close()`` disconnects."""

    def __init__(self, url: str) -> None:
        self.items: list[tuple[float, DecodedEvent | DecodedComment]] = []
        self.status: int | None = None
        self.ended_cleanly = False
        self.error: BaseException | None = None
        self._client = httpx.Client(timeout=httpx.Timeout(10, read=None))
        self._url = url
        self._response: httpx.Response | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        decoder = EventDecoder()
        start = time.monotonic()
        try:
            with self._client.stream("GET", self._url) as response:
                self._response = response
                self.status = response.status_code
                for chunk in response.iter_raw():
                    now = time.monotonic() - start
                    self.items.extend((now, item) for item in decoder.feed_with_comments(chunk))
            self.ended_cleanly = True  # httpx raises on a body cut short of its last chunk
        except BaseException as exc:
            self.error = exc

    def events(self) -> list[str]:
        return [item.data for _, item in self.items if isinstance(item, DecodedEvent)]

    def pings(self) -> list[float]:
        return [t for t, item in self.items if item == PING]

    def wait(self, timeout: float = 10) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the stream did not end"

    def close(self) -> None:
        """Disconnect without reading the rest."""
        self._client.close()
        self._thread.join(5)


@pytest.mark.parametrize(
    ("path", "events", "marker"),
    [("raises-at-once", [], "async-boom"), ("raises-in-thread", ["one"], "thread-boom")],
)
def test_a_producer_that_raises_ends_the_body_cleanly_and_is_logged_once(
    server: Server, path: str, events: list[str], marker: str
) -> None:
    key = new_key()
    mark = server.log_mark()
    reader = Reader(f"{server.url}/{path}/{key}")
    reader.wait()
    assert reader.error is None, reader.error
    assert reader.status == 200
    assert reader.ended_cleanly
    assert reader.events() == events
    if path == "raises-at-once":
        assert len(reader.pings()) >= 1  # the stream was alive while the producer waited
    log = server.wait_for_log(f"RuntimeError: {marker}-{key}", since=mark)
    assert log.count(f"RuntimeError: {marker}-{key}\n") == 1
    assert log.count("Traceback (most recent call last)") == 1
    assert "Exception in ASGI application" not in log
    assert "returned without completing response" not in log
    assert server.state(key)["on_disconnect"] == 0  # an error is not a disconnect


def test_a_producer_that_never_yields_gets_pings_and_is_closed_on_disconnect(
    server: Server,
) -> None:
    key = new_key()
    mark = server.log_mark()
    reader = Reader(f"{server.url}/never-yields/{key}")
    assert wait_until_sync(lambda: len(reader.pings()) >= 5, timeout=10), reader.items
    pings = reader.pings()
    assert reader.status == 200
    assert reader.events() == []
    # one ping per interval, counted from the start of the stream (which sent nothing else)
    assert pings[4] - pings[0] == pytest.approx(4 * producer_app.PING_INTERVAL, abs=0.35)
    assert server.state(key)["finally"] is None
    closed_at = time.time()
    reader.close()
    record = server.wait_for_state(key, lambda s: s["on_disconnect"] == 1)
    assert record["finally"] is not None
    assert record["finally"] - closed_at < 2
    assert record["on_disconnect"] == 1
    time.sleep(0.2)
    assert "Traceback" not in server.log(mark)


def test_a_producer_blocked_in_its_thread_gets_pings_then_resumes(server: Server) -> None:
    key = new_key()
    reader = Reader(f"{server.url}/blocks-in-thread/{key}")
    assert wait_until_sync(lambda: len(reader.pings()) >= 4, timeout=10), reader.items
    assert reader.events() == ["before"]  # the pings kept coming while next() was blocked
    httpx.post(f"{server.url}/release/{key}", timeout=5).raise_for_status()
    reader.wait()
    assert reader.error is None
    assert reader.ended_cleanly
    assert reader.events() == ["before", "after"]
    record = server.wait_for_state(key, lambda s: s["finally"] is not None)
    assert record["yielded"] == 2
    assert record["on_disconnect"] == 0


def test_a_producer_blocked_in_its_thread_is_closed_at_its_next_yield_after_a_disconnect(
    server: Server,
) -> None:
    key = new_key()
    mark = server.log_mark()
    reader = Reader(f"{server.url}/blocks-in-thread/{key}")
    assert wait_until_sync(lambda: len(reader.pings()) >= 2, timeout=10), reader.items
    reader.close()
    # The response ends at once (on_disconnect runs) while the thread is still blocked...
    record = server.wait_for_state(key, lambda s: s["on_disconnect"] == 1)
    assert record["on_disconnect"] == 1
    assert record["finally"] is None
    # ...and once next() returns, the generator is closed at that yield, in its own thread.
    httpx.post(f"{server.url}/release/{key}", timeout=5).raise_for_status()
    record = server.wait_for_state(key, lambda s: s["finally"] is not None)
    assert record["finally"] is not None
    assert record["yielded"] == 1  # "after" was produced but never sent: closed at the yield
    assert record["finally_thread"] != "MainThread"
    time.sleep(0.2)
    log = server.log(mark)
    assert "Traceback" not in log
    assert "ERROR" not in log
