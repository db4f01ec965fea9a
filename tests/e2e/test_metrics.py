"""Prometheus metrics, scraped from a running app (uvicorn) through Litestar's controller."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.live_server import Server, live_server


def scrape(server: Server) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"{server.url}/metrics", timeout=5).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def read_until_a_ping(client: httpx.Client, path: str) -> None:
    """Open a stream, read it until a ping (a comment line) arrives, then leave."""
    with client.stream("GET", path) as response:
        for line in response.iter_lines():
            if line.startswith(":"):
                return


def test_metrics_count_streams_events_pings_stops_and_broadcasts(tmp_path: Path) -> None:
    with live_server("tests.e2e.metrics_app:app", tmp_path) as server:
        before = scrape(server)
        assert before[("litestar_sse_streams_open", ())] == 0
        with httpx.Client(base_url=server.url, timeout=10) as client:
            body = client.get("/count", params={"n": 300}).text
            assert body.count("data:") == 300
            client.get("/fails")
            read_until_a_ping(client, "/idle")  # then leaves: a disconnect
            with client.stream("GET", "/rooms/lobby") as subscription:
                assert subscription.status_code == 200
                client.post("/rooms/lobby", json={"text": "hi"}).raise_for_status()
                lines = subscription.iter_lines()  # kept: dropping it closes the response
                for line in lines:
                    if line.startswith("data:"):
                        break
                during = scrape(server)
        deadline = time.monotonic() + 5
        after = scrape(server)
        while after[("litestar_sse_streams_open", ())] and time.monotonic() < deadline:
            time.sleep(0.05)
            after = scrape(server)

    def grew(name: str, labels: tuple[tuple[str, str], ...] = ()) -> float:
        return after[(name, labels)] - before.get((name, labels), 0.0)

    assert during[("litestar_sse_streams_open", ())] == 1  # the subscription
    assert during[("litestar_sse_broadcast_subscribers", (("broadcaster", "chat"),))] == 1
    assert after[("litestar_sse_streams_open", ())] == 0
    assert grew("litestar_sse_streams_started_total") == 4
    assert grew("litestar_sse_events_sent_total") >= 300 + 1 + 1 + 1
    assert grew("litestar_sse_bytes_sent_total") >= sum(
        len(f"data: {i}\r\n\r\n") for i in range(300)
    )
    assert grew("litestar_sse_producer_errors_total") == 1
    assert grew("litestar_sse_pings_sent_total") >= 1
    # the idle stream and the subscription, both left by their client
    assert grew("litestar_sse_streams_stopped_total", (("reason", "disconnect"),)) == 2
    assert grew("litestar_sse_broadcast_published_total", (("broadcaster", "chat"),)) == 1
    assert grew("litestar_sse_broadcast_delivered_total", (("broadcaster", "chat"),)) == 1
