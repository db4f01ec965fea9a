"""Prometheus metrics, scraped from a running app (uvicorn) through Litestar's controller."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.live_server import Server, live_server
from tests.redis_support import RedisProcess, unique_prefix

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(server: Server) -> Samples:
    text = httpx.get(f"{server.url}/metrics", timeout=5).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape_until(
    server: Server, predicate: Callable[[Samples], bool], timeout: float = 10.0
) -> Samples:
    """Scrape until ``predicate`` holds of the samples (or the time is up); the last ones."""
    deadline = time.monotonic() + timeout
    samples = scrape(server)
    while not predicate(samples) and time.monotonic() < deadline:
        time.sleep(0.05)
        samples = scrape(server)
    return samples


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
        after = scrape_until(server, lambda s: not s[("litestar_sse_streams_open", ())], 5)

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


def read_until_gap(
    client: httpx.Client, path: str, last_event_id: str, **params: list[str]
) -> list[str]:
    """Resume a stream from ``last_event_id`` and read it up to its gap event; return the
    data lines that came before it (the replay)."""
    data: list[str] = []
    headers = {"Last-Event-ID": last_event_id}
    with client.stream("GET", path, params=params, headers=headers) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line == "event: gap":
                return data
            if line.startswith("data:"):
                data.append(line)
    raise AssertionError(f"no gap event after {data}")


def chat(name: str, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return (
        f"litestar_sse_broadcast_{name}",
        tuple(sorted({"broadcaster": "chat", **labels}.items())),
    )


def on_redis(name: str, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return (
        f"litestar_sse_broadcast_{name}",
        tuple(sorted({"broadcaster": "redis", **labels}.items())),
    )


def test_metrics_count_replays_gaps_queues_and_redis_errors(
    tmp_path: Path, redis_process: Callable[..., RedisProcess]
) -> None:
    redis = redis_process()
    env = {"METRICS_REDIS_URL": redis.url, "METRICS_REDIS_PREFIX": unique_prefix()}
    with (
        live_server("tests.e2e.metrics_app:app", tmp_path, env=env) as server,
        httpx.Client(base_url=server.url, timeout=10) as client,
    ):

        def publish(path: str, text: str) -> str:
            response = client.post(path, json={"text": text})
            response.raise_for_status()
            return str(response.json()["id"])

        before = scrape(server)
        assert before[chat("resumes_total")] == 0
        assert before[chat("queue_bytes")] == before[chat("queue_bytes_max")] == 0
        start = publish("/rooms/lobby", "zero")
        for text in ("one", "two"):
            publish("/rooms/lobby", text)
            publish("/rooms/brief", text)  # keeps its newest event only
        # One resume: lobby's missed events replayed, then a gap for brief's lost ones.
        replay = read_until_gap(client, "/topics", start, topic=["lobby", "brief"])
        assert replay == ['data: {"text":"one"}', 'data: {"text":"two"}']
        assert read_until_gap(client, "/rooms/lobby", "not-an-id") == []
        resumed = scrape_until(server, lambda s: s[chat("resumes_total")] == 2)

        publish("/redis/rooms/r", "warm")  # a connection left idle in the pool
        with redis.stalled():
            statuses = [
                client.post("/redis/rooms/r", json={"text": text}).status_code
                for text in ("unknown", "refused")
            ]
        assert statuses == [503, 503]
        after_stall = scrape(server)

        redis.stop()
        assert client.get("/redis/rooms/new").status_code == 503
        down = scrape_until(
            server, lambda s: s[on_redis("backend_errors_total", error="reader")] > 0
        )
        redis.start()
        back = scrape_until(server, lambda s: s[on_redis("backend_reconnects_total")] > 0)

    assert resumed[chat("resumes_total")] == 2
    assert resumed[chat("replayed_total")] == 2
    assert {
        reason: resumed[chat("gaps_total", reason=reason)]
        for reason in ("invalid", "epoch", "retention", "overflow")
    } == {"invalid": 1, "epoch": 0, "retention": 1, "overflow": 0}
    # gauges: nothing is queued once the streams have written everything and ended
    for gauge in ("queue_bytes", "queue_bytes_max"):
        assert back[chat(gauge)] == back[on_redis(gauge)] == 0
    assert after_stall[on_redis("backend_errors_total", error="outcome_unknown")] == 1
    assert after_stall[on_redis("backend_errors_total", error="not_published")] == 1
    assert down[on_redis("backend_errors_total", error="subscribe")] == 1
    assert down[on_redis("backend_reconnects_total")] == 0
    assert back[on_redis("backend_reconnects_total")] >= 1
    assert back[on_redis("backend_errors_total", error="reader")] >= 1
    # the in-memory broadcaster met no backend error
    kinds = ("not_published", "outcome_unknown", "subscribe", "replay", "read", "reader")
    assert [back[chat("backend_errors_total", error=kind)] for kind in kinds] == [0] * 6
