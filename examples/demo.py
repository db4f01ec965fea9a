"""The demo: one broadcast followed by every open tab, a cut and a resume, live figures.

Run it with ``make demo`` (a small venv of its own: this package and uvicorn) and open
http://127.0.0.1:8000 in two or more tabs. Everything is served by this module: no CDN, no
external assets.

What it shows:

* **Broadcast.** Every tab subscribes to the same topics of one
  :class:`~litestar_sse.broadcast.Broadcaster`:
  ``ticks`` (a counter published ten times a second), ``chat`` (what any tab publishes with the
  form, ``POST /messages``) and ``stats``. One publish reaches every tab, encoded once.
* **Resume.** "Cut 1 s" closes the tab's stream and opens it again a second later with the last
  id it saw (``?lastEventId=``, what a browser's own reconnect sends as ``Last-Event-ID``): the
  ticks published meanwhile are replayed from the history, none is lost. "Cut 4 s" outlasts the
  history (the last :data:`TICK_HISTORY_SECONDS` seconds of ticks): the stream starts with a
  ``gap`` event, and the page names the ticks that are lost for good.
* **Real figures.** Once a second the server reads :meth:`Broadcaster.stats` and
  :attr:`SSEPlugin.open_streams` and publishes them on ``stats``: events published per second,
  deliveries per second (an event sent to three tabs is three deliveries), open streams, resumes
  and gap events. Nothing is made up; the page plots them, one unit per chart.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from typing import Annotated, Any

import msgspec
from litestar import Litestar, MediaType, Request, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from litestar_sse import ServerSentEvent, SSEConfig, SSEPlugin
from litestar_sse.broadcast import Broadcaster, MemoryBackend, Retention

TICKS_PER_SECOND = 10
TICK_HISTORY_SECONDS = 3.0
"""How far back a resuming tab can be replayed: a cut longer than this gets a gap event."""
TOPICS = ("ticks", "chat", "stats")


def retention(topic: str) -> Retention:
    """The ticks keep a short history, so that a long cut shows the gap; the rest keep more."""
    if topic == "ticks":
        return Retention(max_events=None, max_age=TICK_HISTORY_SECONDS)
    return Retention(max_events=200)


class Tick(msgspec.Struct):
    n: int


class NewMessage(msgspec.Struct):
    tab: Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class Stats(msgspec.Struct):
    """One sample of the figures, measured over the last second."""

    uptime_s: float
    events_per_s: float
    deliveries_per_s: float
    open_streams: int
    resumes: int
    replayed: int
    gaps: int


broadcaster = Broadcaster(MemoryBackend(retention=retention))
plugin = SSEPlugin(
    SSEConfig(broadcaster=broadcaster, ping_interval=15, send_timeout=30, retry=1_000)
)


@dataclasses.dataclass
class Publishers:
    """The two background tasks of the demo: the ticks and the figures."""

    started: float = dataclasses.field(default_factory=time.monotonic)
    tasks: list[asyncio.Task[None]] = dataclasses.field(default_factory=list)

    async def ticks(self) -> None:
        n = 0
        while True:
            n += 1
            await broadcaster.publish("ticks", Tick(n), event="tick")
            await asyncio.sleep(1 / TICKS_PER_SECOND)

    async def figures(self) -> None:
        before, then = broadcaster.stats(), time.monotonic()
        while True:
            await asyncio.sleep(1.0)
            now, stats = time.monotonic(), broadcaster.stats()
            elapsed = now - then
            sample = Stats(
                uptime_s=round(now - self.started, 1),
                events_per_s=round((stats.published - before.published) / elapsed, 1),
                deliveries_per_s=round((stats.delivered - before.delivered) / elapsed, 1),
                open_streams=plugin.open_streams,
                resumes=stats.resumes,
                replayed=stats.replayed,
                gaps=sum(stats.gaps.values()),
            )
            before, then = stats, now
            await broadcaster.publish("stats", sample, event="stats")

    def start(self) -> None:
        self.tasks = [asyncio.create_task(job()) for job in (self.ticks, self.figures)]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


publishers = Publishers()


@get("/events")
async def events(
    request: Request[Any, Any, Any], broadcaster: NamedDependency[Broadcaster]
) -> ServerSentEvent:
    """Every tab's stream: all three topics; ``Last-Event-ID`` (or ``?lastEventId=``) resumes."""
    return await broadcaster.subscribe(TOPICS, connection=request)


@post("/messages")
async def publish_message(
    data: JSONBody[NewMessage], broadcaster: NamedDependency[Broadcaster]
) -> dict[str, str]:
    """Publish a message to every tab; returns its event id."""
    return {"id": await broadcaster.publish("chat", data, event="chat")}


@get("/", media_type=MediaType.HTML)
async def page() -> str:
    return PAGE.replace("__HISTORY__", f"{TICK_HISTORY_SECONDS:g}")


PAGE = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>litestar-sse demo: broadcast, resume, live figures</title>
<link rel="icon" href="data:,">
<style>
  :root { --bg:#f6f7f9; --card:#fff; --text:#1f2328; --muted:#656d76; --line:#d8dee4;
          --blue:#1f6feb; --orange:#d1495b; --green:#1a7f37; --red:#cf222e; }
  * { box-sizing: border-box; }
  body { margin:0; font:15px/1.45 system-ui, sans-serif; background:var(--bg); color:var(--text); }
  header { padding:16px 24px; border-bottom:1px solid var(--line); background:var(--card);
           display:flex; gap:16px; align-items:center; flex-wrap:wrap; }
  h1 { font-size:18px; margin:0; }
  main { display:grid; grid-template-columns:repeat(auto-fit, minmax(330px, 1fr)); gap:16px;
         padding:16px 24px; }
  section { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:14px; }
  h2 { font-size:14px; margin:0 0 8px; color:var(--muted); text-transform:uppercase; }
  .badge { padding:2px 10px; border-radius:10px; color:#fff; background:var(--muted); }
  .badge.open { background:var(--green); } .badge.cut { background:var(--red); }
  .figures { display:grid; grid-template-columns:repeat(3, 1fr); gap:8px; }
  .figure b { display:block; font-size:22px; font-variant-numeric:tabular-nums; }
  .figure span { color:var(--muted); font-size:12px; }
  #messages { list-style:none; padding:0; margin:8px 0 0; max-height:180px; overflow:auto; }
  #messages li { padding:3px 0; border-bottom:1px solid var(--line); }
  #resume { min-height:3em; }
  .ok { color:var(--green); } .lost { color:var(--red); }
  button { font:inherit; padding:5px 12px; border-radius:6px; border:1px solid var(--line);
           background:var(--card); color:var(--text); cursor:pointer; }
  input { font:inherit; padding:5px 8px; border:1px solid var(--line); border-radius:6px;
          width:60%; }
  canvas { width:100%; height:auto; }
  .muted { color:var(--muted); font-size:13px; }
</style>
</head>
<body>
<header>
  <h1>litestar-sse demo</h1>
  <span>this tab: <b id="tab"></b></span>
  <span class="badge" id="status">connecting</span>
  <span>last tick <b id="tick">-</b></span>
  <span class="muted">last event id <code id="last-id">-</code></span>
</header>
<main>
  <section>
    <h2>Broadcast to every tab</h2>
    <p class="muted">Open this page in another tab too: a message published here reaches all of
      them through one <code>Broadcaster.publish</code>.</p>
    <form id="say"><input id="text" placeholder="a message" maxlength="200" autocomplete="off">
      <button id="send">Publish</button></form>
    <ul id="messages"></ul>
  </section>
  <section>
    <h2>Cut and resume</h2>
    <p class="muted">Closes this tab's stream, then reconnects with the last id it saw. The
      server keeps the last __HISTORY__ s of ticks: a shorter cut is replayed, a longer one
      gets a <code>gap</code> event.</p>
    <button id="cut-short" data-seconds="1">Cut 1 s</button>
    <button id="cut-long" data-seconds="4">Cut 4 s</button>
    <p id="resume" class="muted">No cut yet.</p>
  </section>
  <section>
    <h2>Measured on the server, every second</h2>
    <div class="figures">
      <div class="figure"><b id="events-per-s">-</b><span>events published/s</span></div>
      <div class="figure"><b id="deliveries-per-s">-</b><span>deliveries/s</span></div>
      <div class="figure"><b id="open-streams">-</b><span>open streams</span></div>
      <div class="figure"><b id="resumes">-</b><span>resumes</span></div>
      <div class="figure"><b id="replayed">-</b><span>events replayed</span></div>
      <div class="figure"><b id="gaps">-</b><span>gap events</span></div>
    </div>
    <p class="muted">From <code>Broadcaster.stats()</code> and <code>SSEPlugin.open_streams</code>,
      published on the <code>stats</code> topic.</p>
  </section>
  <section>
    <h2>Throughput</h2>
    <canvas id="rate-chart" width="640" height="260"
      aria-label="events per second over the last minute"></canvas>
  </section>
  <section>
    <h2>Open streams</h2>
    <canvas id="streams-chart" width="640" height="260"
      aria-label="open streams over the last minute"></canvas>
  </section>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const tab = Math.random().toString(36).slice(2, 6);
$("tab").textContent = tab;
const page = window.demo = {ticks: [], messages: [], samples: [], gaps: [], resumes: [],
                            opens: 0, lastId: null, axes: {}};
let source = null;
let cut = null;  // {lastTick, seconds} while a cut is being resumed

function status(text, kind) {
  $("status").textContent = text;
  $("status").className = "badge " + kind;
}

function connect() {
  const url = page.lastId ? "/events?lastEventId=" + encodeURIComponent(page.lastId) : "/events";
  source = new EventSource(url);
  source.onopen = () => { page.opens += 1; status("open", "open"); };
  source.onerror = () =>
    status(source.readyState === EventSource.CLOSED ? "closed" : "reconnecting", "");
  const remember = (e) => {
    if (!e.lastEventId) return;
    page.lastId = e.lastEventId;
    $("last-id").textContent = e.lastEventId;
  };
  source.addEventListener("tick", (e) => { remember(e); onTick(JSON.parse(e.data).n); });
  source.addEventListener("chat", (e) => { remember(e); onMessage(JSON.parse(e.data)); });
  source.addEventListener("stats", (e) => { remember(e); onStats(JSON.parse(e.data)); });
  source.addEventListener("gap", (e) => { onGap(JSON.parse(e.data)); });
}

function onTick(n) {
  const previous = page.ticks.length ? page.ticks[page.ticks.length - 1] : null;
  page.ticks.push(n);
  if (page.ticks.length > 2000) page.ticks.splice(0, 1000);
  $("tick").textContent = n;
  if (cut && !cut.firstTick) {
    cut.firstTick = n;
    setTimeout(() => settle(cut), 50);  // the replay arrives at once, live ticks 100 ms apart
  }
  if (cut) cut.received += 1;
}

function settle(done) {
  if (done !== cut) return;
  cut = null;
  const missedFrom = done.lastTick + 1;
  if (done.gap) {
    const lost = done.firstTick - missedFrom;
    const text = `Gap (${done.gap.reason}): ticks #${missedFrom}\u2013#${done.firstTick - 1} ` +
      `(${lost}) are no longer in the history and are lost; live from #${done.firstTick}.`;
    page.gaps.push({from: missedFrom, to: done.firstTick - 1, reason: done.gap.reason});
    show(text, "lost");
  } else {
    page.resumes.push({after: done.lastTick, first: done.firstTick, replayed: done.received});
    show(`Resumed after tick #${done.lastTick}: no tick lost, the ${done.received} missed ` +
         `during the ${done.seconds} s cut were replayed on reconnect.`, "ok");
  }
}

function show(text, kind) { $("resume").textContent = text; $("resume").className = kind; }

function onGap(data) { if (cut) cut.gap = data; }

function onMessage(message) {
  page.messages.push(message);
  const item = document.createElement("li");
  item.textContent = `tab ${message.tab}: ${message.text}`;
  $("messages").prepend(item);
}

function onStats(sample) {
  page.samples.push(sample);
  if (page.samples.length > 60) page.samples.shift();
  $("events-per-s").textContent = sample.events_per_s.toFixed(1);
  $("deliveries-per-s").textContent = sample.deliveries_per_s.toFixed(1);
  $("open-streams").textContent = sample.open_streams;
  $("resumes").textContent = sample.resumes;
  $("replayed").textContent = sample.replayed;
  $("gaps").textContent = sample.gaps;
  drawCharts();
}

function cutFor(seconds) {
  if (!source || cut) return;
  source.close();
  status("cut", "cut");
  const lastTick = page.ticks[page.ticks.length - 1];
  cut = {lastTick, seconds, received: 0, firstTick: null, gap: null};
  show(`Cut after tick #${lastTick}; reconnecting in ${seconds} s with id ${page.lastId}`, "muted");
  setTimeout(connect, seconds * 1000);
}

$("cut-short").onclick = (e) => cutFor(Number(e.target.dataset.seconds));
$("cut-long").onclick = (e) => cutFor(Number(e.target.dataset.seconds));
$("say").onsubmit = async (e) => {
  e.preventDefault();
  const text = $("text").value.trim();
  if (!text) return;
  $("text").value = "";
  await fetch("/messages", {method: "POST", headers: {"content-type": "application/json"},
                            body: JSON.stringify({tab, text})});
};

// A line chart with labelled axes: x is seconds before the newest sample, y has one unit.
function chart(canvas, series, yLabel, whole) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, left = 64, right = 12, top = 28, bottom = 44;
  const css = getComputedStyle(document.body);
  ctx.clearRect(0, 0, w, h);
  ctx.font = "13px system-ui, sans-serif";
  ctx.fillStyle = css.color;
  const samples = page.samples;
  const values = series.flatMap((s) => samples.map(s.value));
  const top_ = Math.max(1, ...values) * 1.15;
  const max = whole ? Math.max(4, Math.ceil(top_ / 4) * 4) : top_;
  const span = 60;
  const x = (age) => left + (w - left - right) * (1 - age / span);
  const y = (v) => h - bottom - (h - top - bottom) * (v / max);
  ctx.strokeStyle = "#8c959f";
  ctx.beginPath(); ctx.moveTo(left, top); ctx.lineTo(left, h - bottom);
  ctx.lineTo(w - right, h - bottom); ctx.stroke();
  ctx.textAlign = "right"; ctx.textBaseline = "middle";
  for (let i = 0; i <= 4; i++) {
    const v = max * i / 4;
    ctx.fillText(whole || v >= 100 ? v.toFixed(0) : v.toFixed(1), left - 6, y(v));
  }
  ctx.textAlign = "center"; ctx.textBaseline = "top";
  for (const age of [60, 45, 30, 15, 0]) ctx.fillText(String(age), x(age), h - bottom + 4);
  ctx.fillText("seconds ago", left + (w - left - right) / 2, h - 18);
  ctx.save(); ctx.translate(14, top + (h - top - bottom) / 2); ctx.rotate(-Math.PI / 2);
  ctx.fillText(yLabel, 0, -8); ctx.restore();
  let legend = left + 8;
  for (const s of series) {
    ctx.strokeStyle = s.color; ctx.lineWidth = 2; ctx.beginPath();
    samples.forEach((sample, i) => {
      const px = x(samples.length - 1 - i), py = y(s.value(sample));
      if (i === 0) ctx.moveTo(px, py); else ctx.lineTo(px, py);
    });
    ctx.stroke(); ctx.lineWidth = 1;
    ctx.fillStyle = s.color; ctx.textAlign = "left"; ctx.textBaseline = "top";
    const label = "\u2014 " + s.name;
    ctx.fillText(label, legend, 6);
    legend += ctx.measureText(label).width + 18;
    ctx.fillStyle = css.color;
  }
  page.axes[canvas.id] = {x: "seconds ago", y: yLabel, series: series.map((s) => s.name)};
}

function drawCharts() {
  chart($("rate-chart"), [
    {name: "events published", color: "#1f6feb", value: (s) => s.events_per_s},
    {name: "deliveries", color: "#d1495b", value: (s) => s.deliveries_per_s},
  ], "events per second");
  chart($("streams-chart"), [
    {name: "open streams", color: "#1a7f37", value: (s) => s.open_streams},
  ], "streams", true);
}

connect();
</script>
</body>
</html>
"""


app = Litestar(
    [events, publish_message, page],
    plugins=[plugin],
    on_startup=[publishers.start],
    on_shutdown=[publishers.stop],
)


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8000)
