"""Event ids of a broadcast: ``<epoch>-<position>``.

The *epoch* names one history (one in-memory hub in one process, or one Redis dataset). The
*position* orders every event of that history, across all its topics, so one id is a cursor
for any set of topics: a client subscribed to ``a`` and ``b`` that last saw ``k3f0a9c1-41``
has seen every event of ``a`` and ``b`` up to position 41 and none after it.

Positions are ints inside the package. The in-memory backend writes them in decimal
(``k3f0a9c1-41``); the Redis backend writes the stream id they come from
(``k3f0a9c1-1700000000123-0``) and packs its two parts into one int for comparisons.
"""

from __future__ import annotations

import re
import secrets
from typing import Final

__all__ = (
    "REDIS_SEQUENCE_BITS",
    "format_redis_position",
    "new_epoch",
    "pack_redis_id",
    "parse_memory_position",
    "parse_redis_position",
    "split_event_id",
    "split_redis_event_id",
)

_EPOCH: Final = re.compile(r"[0-9a-f]{1,32}")
_DECIMAL: Final = re.compile(r"0|[1-9][0-9]{0,18}")
_REDIS_ID: Final = re.compile(r"(0|[1-9][0-9]{0,15})-(0|[1-9][0-9]{0,9})")

REDIS_SEQUENCE_BITS: Final = 32
"""A Redis stream id ``ms-n`` is packed as ``ms << 32 | n``; ``n`` stays far below 2**32."""

_SEQUENCE_MASK: Final = (1 << REDIS_SEQUENCE_BITS) - 1


def new_epoch() -> str:
    """A random epoch: 8 lowercase hex digits, never containing the ``-`` separator."""
    return secrets.token_hex(4)


def split_event_id(value: str) -> tuple[str, str] | None:
    """Split an id into ``(epoch, position text)``, or ``None`` if it is not one of ours."""
    epoch, sep, position = value.partition("-")
    if not sep or not _EPOCH.fullmatch(epoch):
        return None
    return epoch, position


def parse_memory_position(text: str) -> int | None:
    """The position of an in-memory id (a decimal sequence number), or ``None``."""
    return int(text) if _DECIMAL.fullmatch(text) else None


def pack_redis_id(stream_id: bytes) -> int:
    """Pack a Redis stream id (``b"1700000000123-4"``) into one comparable int."""
    ms, _, n = stream_id.partition(b"-")
    return int(ms) << REDIS_SEQUENCE_BITS | int(n)


def parse_redis_position(text: str) -> int | None:
    """The packed position of a Redis-backed id's position part (``ms-n``), or ``None``."""
    match = _REDIS_ID.fullmatch(text)
    if match is None:
        return None
    ms, n = int(match[1]), int(match[2])
    if n > _SEQUENCE_MASK:
        return None
    return ms << REDIS_SEQUENCE_BITS | n


def format_redis_position(position: int) -> str:
    """The Redis stream id (``ms-n``) of a packed position."""
    return f"{position >> REDIS_SEQUENCE_BITS}-{position & _SEQUENCE_MASK}"


def split_redis_event_id(event_id: str) -> tuple[str, str] | None:
    """``(epoch, stream id)`` of a Redis-backed event id, or ``None`` for one that is not."""
    parts = split_event_id(event_id)
    if parts is None:
        return None
    position = parse_redis_position(parts[1])
    return None if position is None else (parts[0], format_redis_position(position))
