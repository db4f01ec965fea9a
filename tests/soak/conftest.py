"""The soak suite: long load, churn and fault tests against real servers.

Everything under ``tests/soak`` is marked ``soak``; ``make test`` leaves it out and
``make soak`` runs it. ``SOAK_SCALE`` (a float, default 1) scales the sizes: 1 is the size the
reliability goals name (10,000 streams, 50,000 connect/disconnect cycles, ...).
"""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
ARTIFACTS = HERE.parent / "artifacts"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(item.path).parents:
            item.add_marker(pytest.mark.soak)


def soak_scale() -> float:
    """The ``SOAK_SCALE`` factor (default 1.0)."""
    value = float(os.environ.get("SOAK_SCALE", "1"))
    if value <= 0:
        raise ValueError(f"SOAK_SCALE must be positive, got {value}")
    return value


def scaled(size: int, minimum: int = 1) -> int:
    """``size`` times ``SOAK_SCALE``, at least ``minimum``."""
    return max(minimum, round(size * soak_scale()))


def record(artifact: str, section: str, figures: dict[str, Any]) -> None:
    """Print one test's figures and store them in ``tests/artifacts/{artifact}`` under
    ``section``, next to the other tests' (top-level floats rounded to the millisecond)."""
    figures = {
        "soak_scale": soak_scale(),
        "recorded_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **{name: round(v, 3) if isinstance(v, float) else v for name, v in figures.items()},
    }
    print(f"\n{section}: {json.dumps(figures, indent=2)}")
    path = ARTIFACTS / artifact
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        everything = json.loads(path.read_text())
    except (OSError, ValueError):
        everything = {}
    everything[section] = figures
    path.write_text(json.dumps(everything, indent=2) + "\n")
