"""Garbage ``Last-Event-ID`` over HTTP, for the ``last_event_id`` dependency.

``test_last_event_id.py`` covers the rules; this file throws everything else at them: raw header
bytes no test client would send (through a hand-made ASGI scope), huge values, control
characters, ids that look like ours but point nowhere. The answer is always a 200, with the id
as a ``str`` or ``None``, never an error.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from litestar import Litestar, Request, get
from litestar.di import NamedDependency
from litestar.testing import TestClient

from litestar_sse import SSEPlugin
from litestar_sse._plugin.last_event_id import last_event_id_sent
from tests.sse_wire import http_scope


@get("/", sync_to_thread=False)
def echo(
    request: Request[Any, Any, Any], last_event_id: NamedDependency[str | None]
) -> dict[str, Any]:
    return {"last_event_id": last_event_id, "sent": last_event_id_sent(request)}


APP = Litestar([echo], plugins=[SSEPlugin()])


def call(headers: list[tuple[bytes, bytes]], query: bytes = b"") -> tuple[int, dict[str, Any]]:
    """One request with exactly these header bytes; the status and the JSON answer."""
    scope = http_scope()
    scope.update(query_string=query, headers=[(b"host", b"test"), *headers])
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(APP(scope, receive, send))  # type: ignore[arg-type]
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], json.loads(body)


def header(value: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"last-event-id", value)]


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"x" * 1025, id="just-over-the-limit"),
        pytest.param(b"x" * 65_536, id="64KiB"),
        pytest.param(b"7" * 1_048_576, id="1MiB"),
        pytest.param("\u00e9".encode() * 1025, id="over-the-limit-in-characters"),
        pytest.param(b"\xff", id="invalid-byte"),
        pytest.param(b"abc\xc3", id="truncated-sequence"),
        pytest.param(b"\xc0\xaf", id="overlong"),
        pytest.param(b"\xf4\x90\x80\x80", id="above-U+10FFFF"),
        pytest.param(b"\xed\xb0\x80", id="encoded-surrogate"),
        pytest.param(b"a\x00b", id="nul"),
        pytest.param(b"\x00", id="only-nul"),
        pytest.param(b"a\rb", id="cr"),
        pytest.param(b"a\nb", id="lf"),
        pytest.param(b"", id="empty"),
    ],
)
def test_garbage_header_is_none(raw: bytes) -> None:
    status, answer = call(header(raw))
    assert status == 200
    assert answer["last_event_id"] is None
    assert answer["sent"] is (raw != b"")  # sent, but unusable


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("x" * 1024, id="at-the-limit"),
        pytest.param("\u00e9" * 1024, id="at-the-limit-in-characters"),
        pytest.param("00000000-1", id="other-epoch"),
        pytest.param("0a1b2c3d-99999999999999999999999999", id="far-future"),
        pytest.param("-1", id="negative"),
        pytest.param("abc", id="non-numeric"),
        pytest.param("1.5e3", id="float"),
        pytest.param(" 42 ", id="spaces-kept"),
        pytest.param("\x01\x1f\x7f", id="control-characters"),
        pytest.param("a\tb", id="tab"),
        pytest.param("\U0001f600", id="astral"),
    ],
)
def test_any_other_value_is_passed_on_as_sent(value: str) -> None:
    # The dependency only refuses what no event id can be; what an id means is the app's call.
    status, answer = call(header(value.encode()))
    assert status == 200
    assert answer == {"last_event_id": value, "sent": True}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (b"lastEventId=%FF", "\ufffd"),  # Litestar decodes the query with replacement
        (b"lastEventId=%00", None),
        (b"lastEventId=a%0Db", None),
        (b"lastEventId=" + b"x" * 65_536, None),
        (b"lastEventId=", None),
        (b"lastEventId=1&lastEventId=2", "1"),
    ],
)
def test_garbage_query_parameter(query: bytes, expected: str | None) -> None:
    status, answer = call([], query)
    assert status == 200
    assert answer["last_event_id"] == expected


def test_empty_header_wins_over_the_query_parameter() -> None:
    assert call(header(b""), b"lastEventId=7") == (200, {"last_event_id": None, "sent": False})
    assert call([], b"lastEventId=7") == (200, {"last_event_id": "7", "sent": True})
    assert call([]) == (200, {"last_event_id": None, "sent": False})


def test_repeated_header_takes_the_first() -> None:
    status, answer = call([(b"last-event-id", b"1"), (b"last-event-id", b"\xff")])
    assert (status, answer["last_event_id"]) == (200, "1")


def test_garbage_through_the_test_client() -> None:
    # What a test client can send: long values, control characters, odd but valid UTF-8.
    with TestClient(APP) as client:
        cases: list[tuple[bytes, str | None]] = [
            (b"x" * 70_000, None),
            (b"a\x01b", "a\x01b"),
            ("\u00e9\U0001f600".encode(), "\u00e9\U0001f600"),
        ]
        for value, expected in cases:
            response = client.get("/", headers={b"Last-Event-ID": value})
            assert response.status_code == 200
            assert response.json()["last_event_id"] == expected


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=1100) | st.text(max_size=1100).map(str.encode))
def test_any_header_bytes_give_a_defined_answer(raw: bytes) -> None:
    status, answer = call(header(raw))
    assert status == 200
    try:
        text: str | None = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    usable = text is not None and 0 < len(text) <= 1024 and not set(text) & {"\x00", "\r", "\n"}
    assert answer["last_event_id"] == (text if usable else None)
    assert answer["sent"] is (raw != b"")


@given(st.text(max_size=20))  # no lone surrogates: they cannot travel in a URL
@settings(max_examples=300, deadline=None)
def test_an_id_is_usable_exactly_when_the_app_could_have_sent_it(value: str) -> None:
    # One rule for ids (codec.encoder.event_id_problem): what comes back as Last-Event-ID is
    # kept exactly when check_event_id would let the app send it.
    from urllib.parse import quote

    from litestar_sse.codec._encoder import check_event_id

    try:
        check_event_id(value)
        sendable = bool(value)
    except ValueError:
        sendable = False
    if max(value, default="a") >= "\ud800" and any("\ud800" <= c <= "\udfff" for c in value):
        return  # lone surrogates cannot travel in a URL: nothing to compare
    _, answer = call([], query=b"lastEventId=" + quote(value, safe="").encode())
    assert (answer["last_event_id"] == value) is sendable
