"""End to end: ``tests/e2e/apps.py`` under a real uvicorn, read by real clients and raw sockets.

These cover what an in-process test client cannot: endless streams, the client going away,
a client that stops reading, ping timing on a real event loop, and the exact HTTP framing.
"""

from __future__ import annotations

import itertools
import socket
import statistics
import time
import uuid

import httpx
import httpx_sse
import pytest

from litestar_sse.codec._decoder import DecodedComment, DecodedEvent, EventDecoder
from tests.e2e import apps
from tests.e2e.live_server import Server
from tests.sse_wire import Ev, both, ours


def new_key() -> str:
    return uuid.uuid4().hex[:12]


def read_response(sock: socket.socket, deadline: float) -> bytes:
    """Read until the peer closes (or the deadline passes)."""
    data = bytearray()
    while time.monotonic() < deadline:
        sock.settimeout(max(deadline - time.monotonic(), 0.01))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        if not chunk:
            break
        data += chunk
    return bytes(data)


def dechunk(body: bytes) -> tuple[list[bytes], bool]:
    """Split a chunked body into its chunks; True if it ends with the zero-size chunk."""
    chunks: list[bytes] = []
    pos = 0
    while True:
        line_end = body.find(b"\r\n", pos)
        if line_end < 0:
            return chunks, False
        size = int(body[pos:line_end].split(b";")[0], 16)
        start = line_end + 2
        if size == 0:
            return chunks, body[start : start + 2] == b"\r\n" and len(body) == start + 2
        chunks.append(body[start : start + size])
        if body[start + size : start + size + 2] != b"\r\n":
            return chunks, False
        pos = start + size + 2


def raw_get(server: Server, path: str, *, method: str = "GET") -> socket.socket:
    sock = socket.create_connection((server.host, server.port), timeout=10)
    sock.sendall(
        f"{method} {path} HTTP/1.1\r\nHost: {server.host}\r\nAccept: text/event-stream\r\n"
        "Connection: close\r\n\r\n".encode()
    )
    return sock


# -- (1) client disconnect -------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_client_disconnect_runs_server_cleanup(server: Server, kind: str) -> None:
    key = new_key()
    path = "/sse/disconnect/" if kind == "async" else "/sse/disconnect-sync/"
    decoder = EventDecoder()
    received: list[DecodedEvent] = []
    with httpx.Client(timeout=10) as client, client.stream("GET", server.url + path + key) as r:
        assert r.status_code == 200
        for chunk in r.iter_raw():
            received.extend(decoder.feed(chunk))
            if len(received) >= 3:
                break
    # leaving the blocks closed the connection mid-stream
    assert [e.data for e in received[:3]] == ["0", "1", "2"]
    state = server.wait_for_state(key, lambda s: s["finally"] and s["on_disconnect"] >= 1)
    assert state["finally"]
    assert state["on_disconnect"] == 1
    if kind == "async":
        state = server.wait_for_state(key, lambda s: s["cleanup_awaited"])
        assert state["cleanup_awaited"]  # the producer's finally could await
    else:
        assert state["finally_thread"] == "litestar-sse-sync-iterator"
    sent = state["sent"]
    time.sleep(0.3)
    assert server.state(key)["sent"] == sent  # the producer really stopped
    assert server.state(key)["on_disconnect"] == 1


# -- (2) pings -------------------------------------------------------------------------------


def _read_for(server: Server, path: str, seconds: float) -> list[tuple[float, object]]:
    """Events and comments of a stream with their arrival times, for ``seconds``."""
    decoder = EventDecoder()
    out: list[tuple[float, object]] = []
    with httpx.Client(timeout=10) as client, client.stream("GET", server.url + path) as r:
        assert r.status_code == 200
        start = time.monotonic()
        for chunk in r.iter_raw():
            now = time.monotonic() - start
            out.extend((now, item) for item in decoder.feed_with_comments(chunk))
            if now > seconds:
                break
    return out


def test_idle_stream_gets_pings_at_the_interval(server: Server) -> None:
    window = 1.5
    got = _read_for(server, "/sse/idle", window)
    events = [x for _, x in got if isinstance(x, DecodedEvent)]
    assert events == [DecodedEvent("hello")]
    pings = [t for t, x in got if x == DecodedComment("ping") and t <= window]
    expected = window / apps.PING_INTERVAL  # 7.5
    assert expected * 0.5 <= len(pings) <= expected + 1.5
    gaps = [b - a for a, b in itertools.pairwise(pings)]
    assert 0.6 * apps.PING_INTERVAL <= statistics.median(gaps) <= 2 * apps.PING_INTERVAL
    assert {x for _, x in got if isinstance(x, DecodedComment)} == {DecodedComment("ping")}


def test_busy_stream_gets_no_pings(server: Server) -> None:
    got = _read_for(server, "/sse/busy", 10)
    assert [x for _, x in got if isinstance(x, DecodedComment)] == []
    assert [x.data for _, x in got if isinstance(x, DecodedEvent)] == [str(i) for i in range(30)]


# -- (3) a client that stops reading ---------------------------------------------------------


def test_send_timeout_cuts_a_client_that_stops_reading(server: Server) -> None:
    key = new_key()
    mark = server.log_mark()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        sock.settimeout(10)
        sock.connect((server.host, server.port))
        sock.sendall(f"GET /sse/flood/{key} HTTP/1.1\r\nHost: {server.host}\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:  # read the headers, a byte at a time, then stop reading
            byte = sock.recv(1)
            assert byte
            head += byte
        assert head.startswith(b"HTTP/1.1 200")
        stopped_reading = time.time()
        state = server.wait_for_state(key, lambda s: s["finally"], timeout=15)
        assert state["finally"], state
        # cut within send_timeout of the producer's last successful send, give or take
        assert state["closed_at"] - state["stalled_since"] < apps.SEND_TIMEOUT + 3
        assert state["closed_at"] - stopped_reading < 10
        assert state["sent"] >= 1
        log = server.wait_for_log("did not read", since=mark)
        assert "SSE client did not read" in log
    finally:
        sock.close()
    time.sleep(0.2)  # anything else the cut made the server log
    log = server.log(mark)
    assert "Traceback" not in log
    assert "Exception" not in log


# -- (4) producer errors ---------------------------------------------------------------------


def test_producer_error_ends_body_cleanly_and_logs_traceback_once(server: Server) -> None:
    key = new_key()
    mark = server.log_mark()
    sock = raw_get(server, f"/sse/error/{key}")
    try:
        raw = read_response(sock, time.monotonic() + 10)
    finally:
        sock.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"transfer-encoding: chunked" in head.lower()
    chunks, complete = dechunk(body)
    assert complete, body  # the chunked terminator arrived: a clean end, not a reset
    assert both(chunks) == [Ev("one"), Ev("two")]

    # httpx would raise on a truncated chunked body
    with (
        httpx.Client(timeout=10) as client,
        httpx_sse.connect_sse(client, "GET", f"{server.url}/sse/error/{key}-2") as source,
    ):
        assert [e.data for e in source.iter_sse()] == ["one", "two"]

    marker = f"RuntimeError: boom-{key}"
    log = server.wait_for_log(f"{marker}-2", since=mark)
    assert log.count(marker + "\n") == 1
    assert log.count(f"{marker}-2\n") == 1
    assert log.count("Traceback (most recent call last)") == 2  # one per request
    assert "Exception in ASGI application" not in log
    assert "returned without completing response" not in log


# -- (5) both decoders on the real wire ------------------------------------------------------


@pytest.mark.parametrize("sep", ["crlf", "lf", "cr"])
def test_wire_bytes_decode_the_same_with_both_decoders(server: Server, sep: str) -> None:
    url = f"{server.url}/sse/mixed?sep={sep}"
    with httpx.Client(timeout=10) as client:
        with client.stream("GET", url) as r:
            assert r.headers["content-type"] == "text/event-stream; charset=utf-8"
            assert r.headers["cache-control"] == "no-cache"
            assert r.headers["x-accel-buffering"] == "no"
            assert r.headers["connection"] == "keep-alive"
            raw_chunks = list(r.iter_raw())
        with httpx_sse.connect_sse(client, "GET", url) as source:
            via_client = [Ev(e.data, e.event, e.id, e.retry) for e in source.iter_sse()]
    expected = [
        Ev("plain", "tick"),
        Ev("multi\nline\ndata\nhere", "tick"),
        Ev("caf\u00e9 \u2028 \U0001f600", "tick"),
        Ev("7", "tick"),
        Ev('{"json":[1,2]}', "obj", "id-1"),
        Ev("msg", "m", "id-1", 2500),
        Ev("verbatim", "raw", "id-1"),
        Ev('["a",null,true]', "tick", "id-1"),
        Ev(": not a comment", "tick", "id-1"),
    ]
    assert ours(raw_chunks) == expected  # fed in the chunks the network delivered
    assert both(b"".join(raw_chunks)) == expected
    assert via_client == expected
    separator = {"crlf": b"\r\n", "lf": b"\n", "cr": b"\r"}[sep]
    assert b"".join(raw_chunks).startswith(b"event: tick" + separator + b"data: plain")


# -- HEAD ------------------------------------------------------------------------------------


def test_head_on_an_endless_stream_returns_at_once(server: Server) -> None:
    key = new_key()
    started = time.monotonic()
    response = httpx.head(f"{server.url}/sse/head/{key}", timeout=5)
    assert time.monotonic() - started < 4
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.content == b""
    time.sleep(0.1)
    assert server.state(key)["started"] is False
