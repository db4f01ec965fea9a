"""Garbage ``Last-Event-ID`` headers over a raw socket, against a real uvicorn.

Test clients re-encode header values; a socket sends the bytes as they are. Whatever the
server's HTTP parser lets through reaches the app, which answers with a defined result (the
dependency gives ``None``, a subscription a gap); what the parser refuses gets its ``400``.
Never a 500, and the server keeps serving.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest

from litestar_sse.codec._decoder import DecodedEvent, EventDecoder
from tests.e2e.live_server import Server, live_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # Its own app: the dependency and a broadcast subscription (tests/e2e/apps.py has neither).
    with live_server("tests.e2e.bad_request_app:app", tmp_path_factory.mktemp("uvicorn")) as server:
        yield server


class RawResponse:
    """A response read off the socket: status, headers and (de-chunked) body so far."""

    def __init__(self, head: bytes, body: bytes) -> None:
        status_line, *lines = head.decode("latin-1").split("\r\n")
        self.status = int(status_line.split()[1])
        self.headers: dict[str, str] = {}
        for line in lines:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        self.body = _dechunk(body) if self.headers.get("transfer-encoding") == "chunked" else body


def _dechunk(body: bytes) -> bytes:
    out, pos = bytearray(), 0
    while (end := body.find(b"\r\n", pos)) >= 0:
        size = int(body[pos:end].split(b";")[0], 16)
        if size == 0 or len(body) < end + 2 + size:
            break
        out += body[end + 2 : end + 2 + size]
        pos = end + 2 + size + 2
    return bytes(out)


def send_raw(server: Server, path: bytes, header: bytes, *, until: bytes = b"") -> RawResponse:
    """GET ``path`` with one raw ``Last-Event-ID`` header line; read until the server closes,
    or (for an endless stream) until the body holds ``until``."""
    request = (
        b"GET " + path + b" HTTP/1.1\r\nHost: test\r\nLast-Event-ID: " + header + b"\r\n"
        b"Connection: close\r\n\r\n"
    )
    data = bytearray()
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(request)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            head, _, body = bytes(data).partition(b"\r\n\r\n")
            if until and until in _dechunk(body):
                break
    head, separator, body = bytes(data).partition(b"\r\n\r\n")
    assert separator, f"no complete response: {bytes(data[:200])!r}"
    return RawResponse(head, body)


def assert_still_serving(server: Server) -> None:
    response = send_raw(server, b"/health", b"1")
    assert (response.status, response.body) == (200, b"ok")


# Header values uvicorn's default parser passes on: bytes >= 0x80 (obs-text) are allowed in
# HTTP/1.1 field values, so invalid UTF-8 gets through, and it has no length limit.
PASSED_ON = {
    "not-utf8": b"\xff\xfe",
    "truncated-utf8": b"42\xc3",
    "encoded-surrogate": b"\xed\xa0\x80",
    "64KiB": b"x" * 65_536,
    "1MiB": b"7" * 1_048_576,
}
# Control characters are not allowed in field values: a parser may refuse the request (the
# default one does), or pass the value on.
MAYBE_REFUSED = {"nul": b"a\x00b", "control": b"a\x01b", "del": b"a\x7fb"}


@pytest.mark.parametrize(
    "raw", [*PASSED_ON.values(), *MAYBE_REFUSED.values()], ids=[*PASSED_ON, *MAYBE_REFUSED]
)
def test_garbage_header_to_the_dependency(server: Server, raw: bytes) -> None:
    response = send_raw(server, b"/last-event-id", raw)
    if raw in PASSED_ON.values():
        assert response.status == 200, response.body
        assert json.loads(response.body) == {"last_event_id": None, "sent": True}
    else:
        assert response.status in (200, 400), response.body
        if response.status == 200:
            # Only NUL is refused by the dependency; other control characters pass, unchanged.
            expected = None if b"\x00" in raw else raw.decode()
            assert json.loads(response.body) == {"last_event_id": expected, "sent": True}
    assert_still_serving(server)


@pytest.mark.parametrize("raw", list(PASSED_ON.values()), ids=list(PASSED_ON))
def test_garbage_header_to_a_subscription_is_a_gap(server: Server, raw: bytes) -> None:
    response = send_raw(server, b"/events?topic=bad", raw, until=b"\r\n\r\n")
    assert response.status == 200
    assert response.headers["sse-gap"] == "invalid"
    events = EventDecoder().feed(response.body)
    assert events
    gap = events[0]
    assert isinstance(gap, DecodedEvent)
    assert gap.event == "gap"
    assert json.loads(gap.data)["reason"] == "invalid"
    assert gap.id == response.headers["sse-resumed-from"]
    assert_still_serving(server)


def test_no_server_error_was_logged(server: Server) -> None:
    for raw in PASSED_ON.values():
        send_raw(server, b"/last-event-id", raw)
    assert_still_serving(server)
    log = server.log()
    assert '" 500' not in log
    assert "Traceback" not in log
    assert "ERROR" not in log
