"""One JSON encoder factory for typed data: msgspec, with the app's ``type_encoders``.

Responses (items of a stream) and the broadcaster (published data) both serialize through
:func:`json_encoder`, so a type renders the same whichever way it reaches a client, and as it
does in the app's other responses. Encoders are cached by their ``type_encoders``: the
responses of one app share one, instead of building one per open stream.

Without an app (a bare :func:`~litestar_sse._message.make_item_encoder`), the message layer
uses its own Litestar-free default.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import msgspec
from litestar.serialization import get_serializer

from litestar_sse._message import default_enc_hook

__all__ = ("json_encoder",)


def json_encoder(type_encoders: Mapping[Any, Any] | None = None) -> Callable[[Any], bytes]:
    """The function that encodes one object as JSON bytes, with ``type_encoders``.

    Litestar's serializer (its default encoders plus ``type_encoders``) runs first; what it
    cannot encode falls back to :func:`~litestar_sse._message.default_enc_hook` (pydantic
    models), then fails with the usual ``TypeError``.
    """
    try:
        return _shared(tuple((type_encoders or {}).items()))
    except TypeError:  # an unhashable encoder: built for this caller alone
        return _build(type_encoders or {})


@functools.lru_cache(maxsize=64)
def _shared(type_encoders: tuple[tuple[Any, Any], ...]) -> Callable[[Any], bytes]:
    return _build(dict(type_encoders))


def _build(type_encoders: Mapping[Any, Any]) -> Callable[[Any], bytes]:
    serializer = get_serializer(dict(type_encoders) or None)

    def enc_hook(obj: Any) -> Any:
        try:
            return serializer(obj)
        except (TypeError, NotImplementedError):
            return default_enc_hook(obj)

    return msgspec.json.Encoder(enc_hook=enc_hook).encode
