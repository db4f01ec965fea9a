"""The client's exactly-once run at a larger size: thousands of events, several hundred cuts
per backend (tests/client/test_cuts.py is the short one)."""

from __future__ import annotations

import pytest

from tests.client.test_cuts import feed_server, read_through_cuts
from tests.e2e.live_server import Server
from tests.soak.conftest import soak_scale

__all__ = ("feed_server",)  # the short test's fixture: the same servers, memory and Redis


@pytest.mark.anyio
@pytest.mark.timeout(90)
async def test_every_event_exactly_once_over_hundreds_of_cuts(feed_server: Server) -> None:
    total = max(1000, int(2000 * soak_scale()))
    # Cuts from inside the response head to a few events in: mostly mid-event.
    proxy = await read_through_cuts(feed_server, total, 100, 2500, seed=11)
    assert proxy.cuts >= total // 10, proxy.cuts
