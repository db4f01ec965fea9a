"""One rule for topic names (and idempotency keys), and for how many topics one subscription
may follow.

A topic is a ``str`` of 1 to :data:`MAX_TOPIC_BYTES` bytes in UTF-8, with no control
character (``U+0000``-``U+001F``, ``U+007F``-``U+009F``: NUL, CR, LF, tab, ...) and no lone
surrogate (a ``str`` that cannot be encoded as UTF-8); an idempotency key too. Every topic is
checked here, when it is
published to or subscribed to, before any backend sees it: a topic that would break a Redis
key, a log line or the JSON of a gap event never gets that far, so one bad topic cannot
disturb the other subscribers.

The errors are :class:`litestar.exceptions.ValidationException` (a ``ValueError``): a route
that passes a topic from the request to the broadcaster answers ``400`` without handling them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from litestar.exceptions import ValidationException

__all__ = (
    "DEFAULT_MAX_TOPICS",
    "MAX_TOPIC_BYTES",
    "InvalidTopicError",
    "TooManyTopicsError",
    "check_idempotency_key",
    "check_topic",
    "topic_tuple",
)

MAX_TOPIC_BYTES: Final = 256
"""The longest topic, in bytes of UTF-8."""

DEFAULT_MAX_TOPICS: Final = 100
"""The default of ``Broadcaster(max_topics=...)``: topics one subscription may follow."""

# Control characters (Unicode category Cc) and surrogates (only lone ones can be in a str).
_FORBIDDEN: Final = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_SHOWN: Final = 40
"""Characters of a refused topic quoted in the error (it may come from a client)."""


class InvalidTopicError(ValidationException):
    """A topic name breaks the rule: not a ``str``, empty, too long, or with a control
    character or a lone surrogate.

    A :class:`litestar.exceptions.ValidationException`, so a ``ValueError``, and a ``400`` if
    unhandled in a route.
    """


class TooManyTopicsError(ValidationException):
    """One subscription asked for more topics than the broadcaster's ``max_topics``.

    A :class:`litestar.exceptions.ValidationException`, so a ``ValueError``, and a ``400`` if
    unhandled in a route.
    """


def _shown(topic: str) -> str:
    return repr(topic) if len(topic) <= _SHOWN else repr(topic[:_SHOWN]) + "..."


def check_topic(topic: object) -> str:
    """``topic`` if it is a valid topic name.

    Raises:
        InvalidTopicError: it is not (see the module's docstring for the rule).
    """
    return _check_name(topic, "A topic", InvalidTopicError)


def check_idempotency_key(key: object) -> str:
    """``key`` if it is a valid idempotency key (the rule of topic names).

    Raises:
        ValidationException: it is not (a ``ValueError``; ``400`` if unhandled).
    """
    return _check_name(key, "An idempotency key", ValidationException)


def _check_name(name: object, what: str, error: type[ValidationException]) -> str:
    if type(name) is not str:
        if not isinstance(name, str):
            raise error(detail=f"{what} must be a str, got {name!r:.60}")
        name = str(name)  # a str subclass: its own __eq__ / __hash__ could differ per call
    if not name:
        raise error(detail=f"{what} must not be empty")
    bad = _FORBIDDEN.search(name)
    if bad is not None:
        kind = "a lone surrogate" if "\ud800" <= bad[0] <= "\udfff" else "a control character"
        raise error(detail=f"{what} must not contain {kind} ({bad[0]!r}), got {_shown(name)}")
    if len(name) * 4 > MAX_TOPIC_BYTES and len(name.encode()) > MAX_TOPIC_BYTES:
        raise error(
            detail=f"{what} must be at most {MAX_TOPIC_BYTES} bytes in UTF-8, "
            f"got {len(name.encode())}: {_shown(name)}"
        )
    return name


def topic_tuple(topics: str | Iterable[str], max_topics: int | None) -> tuple[str, ...]:
    """The distinct topics of a subscription, in order, each checked.

    Raises:
        InvalidTopicError: a topic is invalid, or there is none.
        TooManyTopicsError: more than ``max_topics`` distinct topics (``None``: no limit).
    """
    if isinstance(topics, str) or not isinstance(topics, Iterable):
        return (check_topic(topics),)  # raises for anything but a str
    names: dict[str, None] = {}
    for topic in topics:
        names[check_topic(topic)] = None
        if max_topics is not None and len(names) > max_topics:
            # Stops reading at once: a client cannot make the server check a million topics.
            raise TooManyTopicsError(
                detail=f"A subscription may follow at most {max_topics} topics"
            )
    if not names:
        raise InvalidTopicError(detail="Subscribe to at least one topic")
    return tuple(names)
