"""Our EventSource and Chromium's read the same bytes the same way: the WPT format vectors,
served by a raw ASGI app, decoded into the same events, with the same ``Last-Event-ID`` on
every reconnect."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from playwright.sync_api import BrowserContext

from litestar_sse.client import Event, EventSource
from tests.codec.test_wpt_format import SCENARIOS
from tests.e2e.live_server import Server, live_server
from tests.e2e.test_browser import browser  # noqa: F401 - the Chromium fixture

COLLECT = """(scenarios) => {
  window.got = {};
  window.ended = 0;
  for (const [name, types] of Object.entries(scenarios)) {
    const got = window.got[name] = [];
    const source = new EventSource(`/s/${name}?c=browser`);
    for (const type of types) {
      source.addEventListener(type, (e) => got.push([e.type, e.data, e.lastEventId]));
    }
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) window.ended += 1;
    };
  }
}"""


@pytest.fixture(scope="module")
def vectors_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with live_server("tests.client.vectors_app:app", tmp_path_factory.mktemp("v")) as server:
        yield server


async def _read_all(url: str) -> dict[str, list[list[str]]]:
    async def read(name: str) -> list[list[str]]:
        got = []
        async with EventSource(f"{url}/s/{name}?c=python") as source:
            async for item in source:
                assert isinstance(item, Event)
                got.append([item.event, item.data, item.id])
        return got

    results = await asyncio.gather(*(read(name) for name in SCENARIOS))
    return dict(zip(SCENARIOS, results, strict=True))


def test_the_same_events_and_resumes_as_chromium_on_the_wpt_vectors(
    browser: BrowserContext,  # noqa: F811
    vectors_server: Server,
) -> None:
    # Listeners for every type our decoder finds: an event of another type would be missed
    # by the page and show up as a difference.
    types = {
        name: sorted({event.event for _, events in scenario.responses for event in events})
        for name, scenario in SCENARIOS.items()
    }
    page = browser.new_page()
    page.goto(vectors_server.url + "/")
    page.evaluate(COLLECT, types)
    # Playwright's sync API runs an event loop in this thread: ours reads in another.
    with ThreadPoolExecutor(1) as pool:
        ours = pool.submit(asyncio.run, _read_all(vectors_server.url)).result(timeout=30)
    page.wait_for_function(f"window.ended === {len(SCENARIOS)}", timeout=30_000)
    chromium: dict[str, Any] = page.evaluate("window.got")
    page.close()

    assert ours == chromium
    assert any(ours.values())  # not two empty readings
    log = httpx.get(vectors_server.url + "/log").json()
    for name in SCENARIOS:
        # Each resumed with the same Last-Event-ID after each response, then stopped at 204.
        assert log[f"python:{name}"] == log[f"browser:{name}"], name
    # Ids that are not ASCII went out as UTF-8 from both (the app reads headers as latin-1).
    assert log["python:format-field-id"][1] == "…".encode().decode("latin-1")
