"""A live dashboard: a clock, fake server metrics with a chart, a log tail, and reconnection.

Run it with ``make demo`` (or ``.venv/bin/python -m examples.demo``) and open
http://127.0.0.1:8000. Everything is served by this module: no CDN, no external assets.

What it shows:

* named events (``hello``, ``clock``, ``metrics``, ``log``) dispatched to separate
  ``addEventListener`` handlers;
* typed data (msgspec Structs) sent as JSON;
* ids and ``Last-Event-ID``: when the server ends the stream ("End stream (server)"), the browser
  reconnects on its own after ``retry`` milliseconds and says which event it saw last; a
  brand-new ``EventSource`` ("New connection") does not, unless the page passes the id in the
  URL;
* ``on_disconnect`` and ``finally``: the viewer count drops as soon as a tab is closed;
* idle pings and a send timeout, as a production stream would have.
"""

from __future__ import annotations

import asyncio
import datetime
import itertools
import math
import random
import time
from collections.abc import AsyncIterator
from typing import Annotated

import msgspec
from litestar import Litestar, MediaType, get, post
from litestar.params import FromQuery, HeaderParameter

from litestar_sse import ServerSentEvent, ServerSentEventMessage


class Hello(msgspec.Struct):
    viewer: int
    viewers: int
    resumed_after: str | None
    server_started: datetime.datetime


class Clock(msgspec.Struct):
    time: datetime.datetime
    uptime_s: float


class Metrics(msgspec.Struct):
    requests_per_s: float
    latency_p50_ms: float
    latency_p99_ms: float
    cpu_percent: float
    viewers: int
    disconnects: int


class LogLine(msgspec.Struct):
    level: str
    message: str


class Dashboard:
    """State shared by every open stream of this process."""

    def __init__(self) -> None:
        self.started_at = datetime.datetime.now(datetime.timezone.utc)
        self.started = time.monotonic()
        self.viewers = 0
        self.disconnects = 0
        self.viewer_numbers = itertools.count(1)
        self.event_ids = itertools.count(1)
        # Bumped by POST /kick; a stream that sees it change ends itself.
        self.generation = 0

    def client_left(self) -> None:
        """The ``on_disconnect`` callback: runs once the tab is gone and its stream closed."""
        self.disconnects += 1


board = Dashboard()

LOG_MESSAGES = (
    ("INFO", "GET /api/orders 200 in 12 ms"),
    ("INFO", "cache refreshed: 1,204 keys"),
    ("WARNING", "slow query on orders_by_customer (840 ms)"),
    ("INFO", "worker 3 picked up job #5521"),
    ("ERROR", "payment provider timed out, retrying"),
    ("INFO", "POST /api/checkout 201 in 48 ms"),
    ("DEBUG", "connection pool: 7 of 20 in use"),
)


def event(data: msgspec.Struct, name: str, retry: int | None = None) -> ServerSentEventMessage:
    return ServerSentEventMessage(data=data, event=name, id=next(board.event_ids), retry=retry)


async def dashboard_events(
    resumed_after: str | None, limit: int | None, tick: float
) -> AsyncIterator[ServerSentEventMessage]:
    generation = board.generation
    rng = random.Random()
    viewer = next(board.viewer_numbers)
    board.viewers += 1
    try:
        hello = Hello(viewer, board.viewers, resumed_after, board.started_at)
        # retry: how long the browser waits before reconnecting once this stream ends.
        yield event(hello, "hello", retry=2_000)
        rps, p50 = 120.0, 18.0
        for n in itertools.count():
            if limit is not None and n >= limit:
                return
            now = datetime.datetime.now(datetime.timezone.utc)
            yield event(Clock(now, round(time.monotonic() - board.started, 1)), "clock")
            wave = math.sin(time.monotonic() / 8)
            rps = max(5.0, rps + rng.gauss(0, 6) + 4 * wave)
            p50 = min(250.0, max(4.0, p50 + rng.gauss(0, 1.5)))
            p99 = p50 * (3 + rng.random() * 2)
            cpu = min(100.0, max(1.0, rps / 4 + rng.gauss(0, 3)))
            metrics = Metrics(
                round(rps, 1),
                round(p50, 1),
                round(p99, 1),
                round(cpu, 1),
                board.viewers,
                board.disconnects,
            )
            yield event(metrics, "metrics")
            if rng.random() < 0.3:
                level, message = rng.choice(LOG_MESSAGES)
                yield event(LogLine(level, message), "log")
            await asyncio.sleep(tick)
            if board.generation != generation:
                return  # kicked: the browser reconnects after `retry` ms, with Last-Event-ID
    finally:
        # Runs however the stream ends: finished, kicked, or the tab was closed.
        board.viewers -= 1


@get("/events")
async def events(
    last_event_id_header: Annotated[str | None, HeaderParameter(name="Last-Event-ID")] = None,
    last_event_id: FromQuery[str | None] = None,
    limit: FromQuery[int | None] = None,
    tick: FromQuery[float] = 1.0,
) -> ServerSentEvent:
    """The dashboard's stream. ``?limit=N`` ends it after N ticks, ``?tick=`` sets the pace."""
    # Browsers send the header when they reconnect by themselves; a page opening a new
    # EventSource cannot set headers, so it may pass the id in the URL instead.
    resumed_after = last_event_id_header or last_event_id
    return ServerSentEvent(
        dashboard_events(resumed_after, limit, tick),
        ping_interval=10,
        send_timeout=30,
        on_disconnect=board.client_left,
    )


@post("/kick", status_code=200)
async def kick() -> dict[str, int]:
    """End every open stream, as a server restart would."""
    board.generation += 1
    return {"ending": board.viewers}


PAGE = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>litestar-sse live dashboard</title>
<link rel="icon" href="data:,">
<style>
  :root {
    --bg: #f6f7f9; --card: #fff; --text: #1f2328; --muted: #656d76; --line: #d8dee4;
    --blue: #1f6feb; --orange: #d1495b; --green: #1a7f37; --amber: #9a6700; --red: #cf222e;
  }
  @media (prefers-color-scheme: dark) {
    :root {
      --bg: #0d1117; --card: #161b22; --text: #e6edf3; --muted: #8d96a0; --line: #30363d;
      --blue: #4493f8; --orange: #f0718a; --green: #3fb950; --amber: #d29922; --red: #f85149;
    }
  }
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
         background: var(--bg); color: var(--text); }
  header { display: flex; flex-wrap: wrap; align-items: center; gap: 1rem;
           padding: 1rem 1.5rem; border-bottom: 1px solid var(--line); background: var(--card); }
  header h1 { font-size: 1.15rem; margin: 0; flex: 1; }
  #clock { font: 600 1.6rem/1 ui-monospace, "SF Mono", Menlo, monospace; }
  .badge { padding: .25rem .7rem; border-radius: 999px; font-weight: 600; font-size: .85rem;
           color: #fff; background: var(--muted); }
  .badge.open { background: var(--green); }
  .badge.connecting { background: var(--amber); }
  .badge.closed { background: var(--red); }
  main { padding: 1.5rem; display: grid; gap: 1rem; max-width: 1200px; margin: 0 auto;
         grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); }
  .card { background: var(--card); border: 1px solid var(--line); border-radius: 10px;
          padding: .9rem 1rem; }
  .card b, .card .label { display: block; color: var(--muted); font-size: .8rem;
                          font-weight: 400; text-transform: uppercase; letter-spacing: .04em; }
  .card output { display: block; font: 600 1.5rem/1.3 ui-monospace, Menlo, monospace; }
  .wide { grid-column: 1 / -1; }
  canvas { width: 100%; height: 220px; display: block; }
  .legend span { margin-right: 1rem; font-size: .85rem; }
  .legend i { display: inline-block; width: .8rem; height: .2rem; vertical-align: middle;
              margin-right: .3rem; }
  #log { font: 13px/1.5 ui-monospace, Menlo, monospace; margin: 0; padding: 0;
         list-style: none; max-height: 16rem; overflow: auto; }
  #log li { border-bottom: 1px dashed var(--line); padding: .1rem 0; }
  #log .level { display: inline-block; min-width: 5.5em; }
  .INFO { color: var(--blue); } .WARNING { color: var(--amber); }
  .ERROR { color: var(--red); } .DEBUG { color: var(--muted); }
  button { font: inherit; padding: .4rem .8rem; border-radius: 6px; cursor: pointer;
           border: 1px solid var(--line); background: var(--card); color: var(--text); }
  .note { color: var(--muted); font-size: .85rem; margin: .4rem 0 0; }
</style>
</head>
<body>
<header>
  <h1>litestar-sse live dashboard</h1>
  <span id="clock">--:--:--</span>
  <span id="status" class="badge connecting">connecting</span>
</header>
<main>
  <div class="card"><b>Requests / s</b><output id="rps">-</output></div>
  <div class="card"><b>Latency p50</b><output id="p50">-</output></div>
  <div class="card"><b>Latency p99</b><output id="p99">-</output></div>
  <div class="card"><b>CPU</b><output id="cpu">-</output></div>
  <div class="card"><b>Viewers online</b><output id="viewers">-</output></div>
  <div class="card"><b>Disconnects seen</b><output id="disconnects">-</output></div>
  <div class="card"><b>Events received</b><output id="received">0</output></div>
  <div class="card"><b>Last event id</b><output id="last-id">-</output></div>
  <div class="card"><b>Reconnects</b><output id="reconnects">0</output></div>
  <div class="card"><b>Uptime</b><output id="uptime">-</output></div>
  <div class="card wide">
    <div class="legend">
      <span><i style="background: var(--blue)"></i>requests / s</span>
      <span><i style="background: var(--orange)"></i>p99 latency (ms)</span>
    </div>
    <canvas id="chart"></canvas>
  </div>
  <div class="card wide">
    <div class="label">Log</div>
    <ul id="log"></ul>
  </div>
  <div class="card wide">
    <button id="kick">End stream (server)</button>
    <button id="fresh">New connection</button>
    <button id="resume">New connection, resume by URL</button>
    <p class="note" id="hello">Waiting for the server...</p>
    <p class="note">"End stream" makes the server finish every stream: the browser reconnects
      after the event's <code>retry</code> (2 s) and sends <code>Last-Event-ID</code>.
      A new <code>EventSource</code> cannot send that header; the third button passes the id
      in the URL instead.</p>
  </div>
</main>
<script>
  const $ = (id) => document.getElementById(id);
  const points = [];
  const MAX_POINTS = 120;
  let source = null;
  let received = 0;
  let reconnects = 0;
  let lastId = null;

  function setStatus(state) {
    const badge = $("status");
    badge.className = "badge " + state;
    badge.textContent = {open: "live", connecting: "reconnecting", closed: "closed"}[state];
  }

  function count(event) {
    received += 1;
    $("received").textContent = received;
    if (event.lastEventId) {
      lastId = event.lastEventId;
      $("last-id").textContent = lastId;
    }
  }

  function connect(url) {
    if (source) source.close();
    source = new EventSource(url);
    source.onopen = () => setStatus("open");
    source.onerror = () => {
      // CONNECTING: the browser retries by itself. CLOSED: it gave up (e.g. an HTTP error).
      if (source.readyState === EventSource.CONNECTING) {
        reconnects += 1;
        $("reconnects").textContent = reconnects;
        setStatus("connecting");
      } else {
        setStatus("closed");
      }
    };
    source.addEventListener("hello", (event) => {
      count(event);
      const hello = JSON.parse(event.data);
      $("hello").textContent = `You are viewer #${hello.viewer} of ${hello.viewers}. ` +
        (hello.resumed_after ? `Resumed after event ${hello.resumed_after}.`
                             : "Fresh connection: no Last-Event-ID.");
    });
    source.addEventListener("clock", (event) => {
      count(event);
      const clock = JSON.parse(event.data);
      $("clock").textContent = new Date(clock.time).toLocaleTimeString();
      $("uptime").textContent = formatDuration(clock.uptime_s);
    });
    source.addEventListener("metrics", (event) => {
      count(event);
      const m = JSON.parse(event.data);
      $("rps").textContent = m.requests_per_s.toFixed(1);
      $("p50").textContent = m.latency_p50_ms.toFixed(1) + " ms";
      $("p99").textContent = m.latency_p99_ms.toFixed(1) + " ms";
      $("cpu").textContent = m.cpu_percent.toFixed(0) + " %";
      $("viewers").textContent = m.viewers;
      $("disconnects").textContent = m.disconnects;
      points.push([m.requests_per_s, m.latency_p99_ms]);
      if (points.length > MAX_POINTS) points.shift();
      draw();
    });
    source.addEventListener("log", (event) => {
      count(event);
      const line = JSON.parse(event.data);
      const item = document.createElement("li");
      const time = new Date().toLocaleTimeString();
      const level = document.createElement("span");
      level.className = "level " + line.level;
      level.textContent = line.level;
      item.append(level, `${time}  ${line.message}`);
      $("log").prepend(item);
      while ($("log").children.length > 50) $("log").lastChild.remove();
    });
  }

  function formatDuration(seconds) {
    const s = Math.floor(seconds);
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    return (h ? h + "h " : "") + (h || m ? m + "m " : "") + (s % 60) + "s";
  }

  function draw() {
    const canvas = $("chart");
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth, height = canvas.clientHeight;
    canvas.width = width * ratio;
    canvas.height = height * ratio;
    const ctx = canvas.getContext("2d");
    ctx.scale(ratio, ratio);
    ctx.clearRect(0, 0, width, height);
    const styles = getComputedStyle(document.documentElement);
    ctx.strokeStyle = styles.getPropertyValue("--line");
    ctx.lineWidth = 1;
    for (let i = 1; i < 4; i++) {
      const y = Math.round((height * i) / 4) + 0.5;
      ctx.beginPath(); ctx.moveTo(0, y); ctx.lineTo(width, y); ctx.stroke();
    }
    const series = [[0, "--blue"], [1, "--orange"]];
    for (const [index, color] of series) {
      const values = points.map((p) => p[index]);
      const top = Math.max(...values, 1) * 1.15;
      ctx.strokeStyle = styles.getPropertyValue(color);
      ctx.lineWidth = 2;
      ctx.beginPath();
      values.forEach((value, i) => {
        const x = (width * i) / (MAX_POINTS - 1);
        const y = height - (height * value) / top;
        if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
      });
      ctx.stroke();
    }
  }

  $("kick").onclick = () => fetch("/kick", {method: "POST"});
  $("fresh").onclick = () => connect("/events");
  $("resume").onclick = () =>
    connect(lastId ? "/events?last_event_id=" + encodeURIComponent(lastId) : "/events");
  window.addEventListener("resize", draw);
  connect("/events");
</script>
</body>
</html>
"""


@get("/", media_type=MediaType.HTML)
async def index() -> str:
    return PAGE


app = Litestar([index, events, kick])


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8000)
