"""A real browser's ``EventSource`` against a real server (Debian's Chromium, via Playwright)."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import BrowserContext, sync_playwright

from tests.e2e import browser_app, framing_app
from tests.processes import free_port, start_listening
from tests.redis_support import RedisProcess

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"


def _serve(
    app: str, port: int, log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)]
    return start_listening(command, port, log, env=env)


@pytest.fixture(scope="module")
def browser() -> Iterator[BrowserContext]:
    if not os.path.exists(CHROMIUM):
        raise RuntimeError(f"{CHROMIUM} missing: .ci/run installs Debian's chromium package")
    profile = tempfile.mkdtemp(prefix="sse-chromium-")
    with sync_playwright() as playwright:
        # A persistent context is how Playwright takes a fresh --user-data-dir of our own.
        browser = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-quic",
                "--no-first-run",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            yield browser
        finally:
            browser.close()
            shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    process = _serve("tests.e2e.browser_app:app", port, tmp_path / "server.log")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_event_source_receives_every_kind_of_event_and_resumes_after_drops(
    browser: BrowserContext, server: str
) -> None:
    page = browser.new_page()
    page.goto(server + "/")
    page.wait_for_function("window.finished === true", timeout=20_000)
    received = page.evaluate("window.received")
    opens = page.evaluate("window.opens")
    page.close()

    expected = []
    for number in range(1, browser_app.TOTAL + 1):
        event = browser_app._event(number)
        if event.event == "tick":
            expected.append({"type": "tick", "data": event.data, "id": str(number)})
        elif event.event == "done":
            expected.append({"type": "done", "data": "bye", "id": str(number)})
        else:
            expected.append({"type": "message", "data": event.data, "id": str(number)})
    # Every event exactly once, in order: multi-line data joined with LF, JSON intact.
    assert received == expected

    # The server ended each connection after PER_CONNECTION events; the browser came back
    # (after `retry`) with the id of the last event it saw, each time.
    log = httpx.get(server + "/log").json()["connections"]
    per = browser_app.PER_CONNECTION
    resumes = [str(n) for n in range(per, browser_app.TOTAL, per)]
    assert log == [None, *resumes]
    assert opens == len(log)


def test_event_source_reads_the_default_framing_with_retry_ids_and_pings(
    browser: BrowserContext, tmp_path: Path
) -> None:
    """Client-safe framing is read right by the browser too: the retry field line that belongs
    to the first event, pings as comment lines with no blank line after them, ids."""
    port = free_port()
    process = _serve("tests.e2e.framing_app:app", port, tmp_path / "server.log")
    try:
        server = f"http://127.0.0.1:{port}"
        page = browser.new_page()
        page.goto(server + "/")
        page.wait_for_function("window.finished === true", timeout=20_000)
        received = page.evaluate("window.received")
        page.close()
        log = httpx.get(server + "/log").json()["connections"]
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert received == framing_app.expected_events()
    per = framing_app.PER_CONNECTION
    assert [c["last_event_id"] for c in log] == [
        None,
        *map(str, range(per, framing_app.TOTAL, per)),
    ]
    # The app's retry (200 ms) was taken: Chromium's own default is 3 s.
    assert max(framing_app.reconnection_gaps(log)) < 1.5


def _ticks_are_contiguous(ticks: list[int]) -> bool:
    return all(later == earlier + 1 for earlier, later in itertools.pairwise(ticks))


def test_demo_broadcasts_to_two_tabs_resumes_a_cut_and_plots_live_figures(
    browser: BrowserContext, tmp_path: Path
) -> None:
    """The demo a person opens with `make demo`, looked at in Chromium.

    Two tabs follow one broadcast; a message published from one reaches both. A 1 s cut is
    resumed with every tick replayed; a 4 s cut outlasts the 3 s history and the page shows the
    gap. The figures are the server's own counters (open streams, resumes, gap events) and
    change with what the tabs do; both charts have labelled axes, one unit each.
    """
    port = free_port()
    process = _serve("examples.demo:app", port, tmp_path / "demo.log")
    try:
        first, second = browser.new_page(), browser.new_page()
        first.set_viewport_size({"width": 1280, "height": 900})
        for page in (first, second):
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_function("window.demo.opens >= 1", timeout=15_000)
        first.wait_for_function(
            "window.demo.samples.some((s) => s.open_streams >= 2)", timeout=15_000
        )

        first.fill("#text", "hello from the first tab")
        first.click("#send")
        for page in (first, second):
            page.wait_for_function(
                "window.demo.messages.some((m) => m.text === 'hello from the first tab')",
                timeout=10_000,
            )
        assert second.inner_text("#messages").startswith("tab ")

        first.click("#cut-short")
        first.wait_for_function("window.demo.resumes.length >= 1", timeout=15_000)
        [resume] = first.evaluate("window.demo.resumes")
        assert resume["replayed"] >= 5  # about ten ticks were published during the cut
        assert "no tick lost" in first.inner_text("#resume")

        first.click("#cut-long")
        first.wait_for_function("window.demo.gaps.length >= 1", timeout=15_000)
        [gap] = first.evaluate("window.demo.gaps")
        assert gap["reason"] == "retention"
        assert gap["to"] >= gap["from"]
        assert "lost" in first.inner_text("#resume")

        # The server counted both resumes and the gap, and published the figures.
        first.wait_for_function(
            "window.demo.samples.some((s) => s.resumes >= 2 && s.gaps >= 1)", timeout=10_000
        )
        samples = first.evaluate("window.demo.samples")
        assert samples[0]["resumes"] == 0
        assert max(sample["events_per_s"] for sample in samples) > 5
        assert max(sample["deliveries_per_s"] for sample in samples) > 10
        assert first.inner_text("#open-streams").strip() == "2"

        axes = first.evaluate("window.demo.axes")
        assert axes["rate-chart"]["x"] == axes["streams-chart"]["x"] == "seconds ago"
        assert axes["rate-chart"]["y"] == "events per second"
        assert axes["streams-chart"]["y"] == "streams"

        ticks_first = first.evaluate("window.demo.ticks")
        ticks_second = second.evaluate("window.demo.ticks")
        assert _ticks_are_contiguous(ticks_second)  # the tab that was never cut missed nothing
        # The cut tab missed exactly the ticks the page named as lost, nothing else, none twice.
        assert ticks_first == sorted(set(ticks_first))
        missing = set(range(ticks_first[0], ticks_first[-1] + 1)) - set(ticks_first)
        assert missing == set(range(gap["from"], gap["to"] + 1))

        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / "demo.png"
        first.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000  # a rendered page, not a blank one
        for page in (first, second):
            page.close()
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert "Traceback" not in (tmp_path / "demo.log").read_text()


COLLECT_ROOM = """() => {
  window.got = [];
  window.opens = 0;
  const source = new EventSource("/rooms/restart-test/events");
  source.onopen = () => { window.opens += 1; };
  source.addEventListener("message", (e) => {
    window.got.push({id: e.lastEventId, text: JSON.parse(e.data).text});
  });
}"""


def _say(port: int, text: str) -> None:
    url = f"http://127.0.0.1:{port}/rooms/restart-test/messages"
    response = httpx.post(url, json={"author": "test", "text": text}, timeout=10)
    response.raise_for_status()


def test_broadcast_resumes_in_the_browser_across_a_server_restart(
    browser: BrowserContext, redis_server: RedisProcess, tmp_path: Path
) -> None:
    """Messages published while the page's server is down arrive after it restarts, once each.

    Two processes of the chat example share one Redis. The page is served by A; A stops (the
    browser sees a clean end and keeps retrying), messages are published through B, A starts
    again on the same port, and the browser's reconnect carries Last-Event-ID.
    """
    port_a, port_b = free_port(), free_port()
    env = {**os.environ, "REDIS_URL": redis_server.url}
    log_a, log_b = tmp_path / "a.log", tmp_path / "b.log"
    server_a = _serve("examples.chat:app", port_a, log_a, env)
    server_b = _serve("examples.chat:app", port_b, log_b, env)
    try:
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{port_a}/")
        page.evaluate(COLLECT_ROOM)
        page.wait_for_function("window.opens >= 1", timeout=15_000)
        for n in (1, 2, 3):
            _say(port_a, f"m{n}")
        page.wait_for_function("window.got.length >= 3", timeout=15_000)

        server_a.terminate()
        server_a.wait(timeout=15)
        for n in (4, 5, 6):
            _say(port_b, f"m{n}")  # while the page's server is down
        server_a = _serve("examples.chat:app", port_a, log_a, env)
        page.wait_for_function("window.got.length >= 6", timeout=30_000)
        _say(port_a, "m7")
        page.wait_for_function("window.got.length >= 7", timeout=15_000)
        got = page.evaluate("window.got")
        opens = page.evaluate("window.opens")
        page.close()
    finally:
        for server in (server_a, server_b):
            server.terminate()
            server.wait(timeout=15)

    assert [message["text"] for message in got] == [f"m{n}" for n in range(1, 8)]
    ids = [message["id"] for message in got]
    assert len(set(ids)) == len(ids)  # nothing twice
    assert opens >= 2  # the browser really reconnected
    assert "Traceback" not in log_a.read_text()
