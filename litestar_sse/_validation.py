"""One rule for every duration and count a user sets, wherever it is set.

A duration is seconds, as an ``int`` or ``float``. ``None`` turns the feature off (no pings, no
send timeout, no lifetime); any other value must be greater than 0 and finite. ``0`` is refused,
as Litestar 3 refuses ``ServerSentEvent(ping_interval=0)``: "off" has one spelling, ``None``.
(A caller may accept 0 where it means "none at all", as a shutdown grace period does.) NaN is
refused.

A count is an ``int`` of at least a minimum, or ``None`` where the setting has no limit.

A value of the wrong type (a ``str``, or a ``bool``: ``True`` is not one second) raises
``TypeError``, a value out of range ``ValueError``; both name the argument. The response
layer turns the ``ValueError`` into Litestar's ``ImproperlyConfiguredException`` (a
``ValueError`` too), as Litestar 3 does for ``ping_interval``.
"""

from __future__ import annotations

import math

__all__ = ("check_count", "check_required_count", "check_seconds")


def check_seconds(value: float | None, name: str, *, zero: bool = False) -> float | None:
    """``value`` as a float of seconds, or ``None``.

    Args:
        value: The duration; ``None`` means off.
        name: The argument's name, for the error.
        zero: Accept ``0`` (a grace period that may be none at all).

    Raises:
        TypeError: not an int or float (a bool included).
        ValueError: NaN, infinite, negative, or ``0`` where ``zero`` is false.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, or None; got {value!r}")
    if math.isnan(value) or math.isinf(value) or value < 0 or (value == 0 and not zero):
        what = "a number of seconds >= 0" if zero else "a positive number of seconds"
        raise ValueError(f"{name} must be {what} (finite), or None; got {value!r}")
    return float(value)


def check_count(value: int | None, name: str, *, minimum: int) -> int | None:
    """``value`` as an int of at least ``minimum``, or ``None``.

    Raises:
        TypeError: not an int (a bool included).
        ValueError: below ``minimum``.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int >= {minimum}, or None; got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, or None; got {value!r}")
    return value


def check_required_count(value: int, name: str, *, minimum: int) -> int:
    """``value`` as an int of at least ``minimum``: :func:`check_count` without ``None``.

    Raises:
        TypeError: not an int (``None`` and a bool included).
        ValueError: below ``minimum``.
    """
    checked = check_count(value, name, minimum=minimum)
    if checked is None:
        raise TypeError(f"{name} must be an int >= {minimum}, got None")
    return checked
