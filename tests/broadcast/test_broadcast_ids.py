"""Event ids, event bytes and retention settings, without I/O."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from litestar_sse.broadcast import Broadcaster, MemoryBackend, Retention
from litestar_sse.broadcast._events.format import EventFormat
from litestar_sse.broadcast._events.ids import (
    format_redis_position,
    new_epoch,
    pack_redis_id,
    parse_memory_position,
    parse_redis_position,
    split_event_id,
)
from litestar_sse.codec._decoder import DecodedEvent, EventDecoder


def test_epochs_are_random_hex_without_separator() -> None:
    epochs = {new_epoch() for _ in range(100)}
    assert len(epochs) == 100
    assert all(len(e) == 8 and "-" not in e and int(e, 16) >= 0 for e in epochs)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0a1b2c3d-42", ("0a1b2c3d", "42")),
        ("0a1b2c3d-1700000000000-3", ("0a1b2c3d", "1700000000000-3")),
        ("0a1b2c3d-", ("0a1b2c3d", "")),
        ("nothex-1", None),
        ("ABCDEF01-1", None),
        ("42", None),
        ("", None),
        ("-1", None),
    ],
)
def test_split_event_id(value: str, expected: tuple[str, str] | None) -> None:
    assert split_event_id(value) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0", 0), ("42", 42), ("042", None), ("-1", None), ("+1", None), ("1 ", None), ("", None)],
)
def test_parse_memory_position(text: str, expected: int | None) -> None:
    assert parse_memory_position(text) == expected


@given(st.integers(0, 2**45), st.integers(0, 2**32 - 2))
def test_redis_positions_round_trip_and_order_like_stream_ids(ms: int, n: int) -> None:
    position = pack_redis_id(f"{ms}-{n}".encode())
    assert parse_redis_position(f"{ms}-{n}") == position
    assert format_redis_position(position) == f"{ms}-{n}"
    assert pack_redis_id(f"{ms}-{n + 1}".encode()) > position
    assert pack_redis_id(f"{ms + 1}-0".encode()) > position


@pytest.mark.parametrize("text", ["1", "1-", "-1", "01-1", "1-01", "1-4294967296", "a-b", "1-2-3"])
def test_parse_redis_position_refuses(text: str) -> None:
    assert parse_redis_position(text) is None


@pytest.mark.parametrize("sep", ["\r\n", "\n", "\r"])
def test_event_bytes(sep: str) -> None:
    fmt = EventFormat(sep, "gap")
    chunk = fmt.event(b"e-1", b"kind", b"two\nlines")
    assert chunk == f"event: kind{sep}id: e-1{sep}data: two{sep}data: lines{sep}{sep}".encode()
    gap = fmt.gap("overflow", dropped=3)
    decoder = EventDecoder()
    events = decoder.feed(b"id: e-0" + sep.encode() + b"data: x" + sep.encode() * 2 + gap)
    assert events[-1] == DecodedEvent(
        data='{"reason":"overflow","dropped":3}', event="gap", id="e-0"
    )


def test_gap_event_name_is_validated() -> None:
    with pytest.raises(ValueError, match="gap_event"):
        Broadcaster(gap_event="a\nb")


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"max_events": -1}, ValueError),
        ({"max_events": 1.5}, TypeError),
        ({"max_events": True}, TypeError),
        ({"max_age": 0}, ValueError),
        ({"max_age": float("nan")}, ValueError),
        ({"max_age": "1"}, TypeError),
    ],
)
def test_retention_is_validated(kwargs: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        Retention(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"max_queue": 0}, "max_queue"), ({"overflow": "block"}, "overflow")],
)
def test_broadcaster_options_are_validated(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Broadcaster(**kwargs)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(last_event_id=st.text(max_size=40))
def test_any_last_event_id_gives_a_defined_answer(last_event_id: str) -> None:
    """Whatever a client sends, the subscription opens: exact, or a gap, never an error."""

    async def scenario() -> tuple[str | None, str]:
        async with Broadcaster(MemoryBackend()) as broadcaster:
            await broadcaster.publish("t", "x")
            subscription = await broadcaster.open_subscription("t", last_event_id=last_event_id)
            subscription.close()
            return subscription.gap, subscription.resumed_from

    gap, resumed_from = asyncio.run(scenario())
    assert gap in (None, "invalid", "epoch")
    assert resumed_from


def test_retention_zero_keeps_no_history() -> None:
    async def scenario() -> str | None:
        async with Broadcaster(MemoryBackend(retention=Retention(max_events=0))) as broadcaster:
            first = await broadcaster.publish("t", "x")
            await broadcaster.publish("t", "y")
            subscription = await broadcaster.open_subscription("t", last_event_id=first)
            subscription.close()
            return subscription.gap

    assert asyncio.run(scenario()) == "retention"
