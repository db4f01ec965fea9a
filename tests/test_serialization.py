"""One JSON encoder factory: stream items and published data render a type the same way."""

from __future__ import annotations

from typing import Any

from litestar_sse._message import make_item_encoder
from litestar_sse._serialization import json_encoder
from litestar_sse.broadcast._events.format import make_data_encoder


class Money:
    def __init__(self, cents: int) -> None:
        self.cents = cents


class Report:
    """Not a pydantic model, but dumps itself like one."""

    def model_dump(self, mode: str = "python") -> dict[str, Any]:
        return {"mode": mode}


def money(value: Money) -> str:
    return f"{value.cents / 100:.2f}"


def test_the_encoders_of_one_app_are_one_encoder() -> None:
    assert json_encoder({Money: money}) is json_encoder({Money: money})
    assert json_encoder() is json_encoder({})


def test_unhashable_type_encoders_still_get_an_encoder() -> None:
    class Unhashable:
        __hash__ = None  # type: ignore[assignment]

        def __call__(self, value: Money) -> str:
            return money(value)

    assert json_encoder({Money: Unhashable()})(Money(150)) == b'"1.50"'


def test_stream_items_and_published_data_render_types_alike() -> None:
    encoders = {Money: money}
    item = make_item_encoder(json_encode=json_encoder(encoders))
    published = make_data_encoder(encoders)
    for value in (Money(150), Report(), [Money(1), Report()]):
        assert item(value) == b"data: " + published(value) + b"\r\n\r\n"
    assert published(Report()) == b'{"mode":"json"}'
