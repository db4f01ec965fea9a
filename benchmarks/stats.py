"""Small statistics helpers: medians of repetitions and how much they scatter."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples)


def spread(samples: Sequence[float]) -> float | None:
    """Interquartile range relative to the median: how much to trust a ratio on a noisy box.

    None with fewer than three samples, where quartiles mean nothing.
    """
    if len(samples) < 3:
        return None
    q1, _, q3 = statistics.quantiles(samples, n=4, method="inclusive")
    mid = statistics.median(samples)
    return (q3 - q1) / mid if mid else None


def rotated(items: Sequence[str], shift: int) -> list[str]:
    """The order of one repetition: each repetition starts with a different implementation so
    that slow drifts of the machine (thermal, neighbours) do not favour a fixed position."""
    if not items:
        return []
    k = shift % len(items)
    return [*items[k:], *items[:k]]
