"""The client's exactly-once run at a larger size: thousands of events, several hundred cuts
per backend (tests/client/test_cuts.py is the short one)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.client.test_cuts import read_through_cuts
from tests.e2e.live_server import Server, live_server
from tests.soak.conftest import soak_scale


@pytest.fixture(params=["memory", "redis"])
def feed_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    env = {}
    if request.param == "redis":
        env["FEED_REDIS"] = request.getfixturevalue("redis_server").url
    with live_server("tests.client.feed_app:app", tmp_path, env=env) as server:
        yield server


@pytest.mark.anyio
@pytest.mark.timeout(90)
async def test_every_event_exactly_once_over_hundreds_of_cuts(feed_server: Server) -> None:
    total = max(1000, int(2000 * soak_scale()))
    # Cuts from inside the response head to a few events in: mostly mid-event.
    proxy = await read_through_cuts(feed_server, total, 100, 2500, seed=11)
    assert proxy.cuts >= total // 10, proxy.cuts
