"""A chat: every open page is subscribed to a room, every message is broadcast to all of them.

One process, everything in memory (the default)::

    .venv/bin/uvicorn examples.chat:app

Several worker processes, or several machines, sharing the rooms through Redis (Redis >= 6.2,
with persistence if a Redis restart must not lose the history)::

    REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/uvicorn examples.chat:app --workers 4

then open http://127.0.0.1:8000 in two windows (``/?room=other`` for another room). The page is
served by this module: no CDN, no external assets.

What it shows:

* ``SSEConfig(broadcaster=...)``: the plugin hands the
  :class:`~litestar_sse.broadcast.Broadcaster` to the handlers (the ``broadcaster``
  dependency), starts it with the app and closes it after the open streams had their
  graceful end;
* ``POST /rooms/{room}/messages`` publishes a typed message (JSON) to the room's topic,
  ``GET /rooms/{room}/events`` subscribes to it: one encoding per message, whatever the number
  of readers;
* resuming: the browser reconnects with ``Last-Event-ID`` on its own and gets exactly the
  messages it missed; the page also remembers the last id across reloads (``?lastEventId=``,
  since a new ``EventSource`` cannot send headers);
* the ``gap`` event, when missed messages are no longer in the history (the page says so);
* ``GET /stats``: the broadcaster's counters in this process.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
from typing import Annotated, Any

import msgspec
from litestar import Litestar, MediaType, Request, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter

from litestar_sse import ServerSentEvent, ServerSentEventMessage, SSEConfig, SSEPlugin
from litestar_sse.broadcast import Broadcaster, MemoryBackend, Retention
from litestar_sse.broadcast.types import BroadcastBackend

RETENTION = Retention(max_events=500, max_age=3600)
"""History kept per room, for browsers that reconnect: the last 500 messages of the hour."""

Room = Annotated[str, PathParameter(pattern=r"^[a-z0-9-]{1,32}$")]


class NewMessage(msgspec.Struct):
    author: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


class ChatMessage(msgspec.Struct):
    """What every subscriber receives, as the JSON ``data`` of a ``message`` event."""

    room: str
    author: str
    text: str
    sent_at: datetime.datetime


@get("/rooms/{room:str}/events")
async def room_events(
    request: Request[Any, Any, Any], room: Room, broadcaster: NamedDependency[Broadcaster]
) -> ServerSentEvent:
    """Subscribe to a room; ``Last-Event-ID`` (or ``?lastEventId=``) resumes after that id."""
    return await broadcaster.subscribe(f"room:{room}", connection=request)


@post("/rooms/{room:str}/messages")
async def send_message(
    room: Room, data: JSONBody[NewMessage], broadcaster: NamedDependency[Broadcaster]
) -> dict[str, str]:
    """Publish a message to everyone in the room; returns its event id."""
    message = ChatMessage(
        room, data.author, data.text, datetime.datetime.now(datetime.timezone.utc)
    )
    return {"id": await broadcaster.publish(f"room:{room}", message)}


@get("/stats")
async def stats(broadcaster: NamedDependency[Broadcaster]) -> dict[str, Any]:
    """Subscribers per room and delivery counters, in this worker process."""
    return {"pid": os.getpid(), **dataclasses.asdict(broadcaster.stats())}


@get("/", media_type=MediaType.HTML)
async def page() -> str:
    return PAGE


def create_app(redis_url: str | None = None, *, prefix: str = "chat:") -> Litestar:
    """The chat app: rooms in this process, or in Redis when ``redis_url`` is given."""
    backend: BroadcastBackend
    if redis_url:
        from litestar_sse.broadcast import RedisStreamBackend

        backend = RedisStreamBackend(redis_url, prefix=prefix, retention=RETENTION)
    else:
        backend = MemoryBackend(retention=RETENTION)
    config = SSEConfig(
        broadcaster=Broadcaster(backend),
        ping_interval=15,
        send_timeout=30,
        retry=2_000,
        # Sent to every open page when the server stops; the page then reconnects (to another
        # worker, or to this one once it is back) and resumes where it was.
        shutdown_event=ServerSentEventMessage(event="restart", data="server restarting"),
    )
    return Litestar([page, room_events, send_message, stats], plugins=[SSEPlugin(config)])


app = create_app(os.environ.get("REDIS_URL"))


PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>litestar-sse chat</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 0; background: #f4f5f7; color: #222; }
  main { max-width: 42rem; margin: 0 auto; padding: 1rem; display: flex; flex-direction: column;
         height: 100vh; box-sizing: border-box; }
  header { display: flex; justify-content: space-between; align-items: baseline; }
  #status { font-size: 0.85rem; padding: 0.1rem 0.5rem; border-radius: 1rem; background: #ccc; }
  #status.open { background: #b7e4c7; } #status.error { background: #f4c7c3; }
  #log { flex: 1; overflow-y: auto; background: #fff; border: 1px solid #ddd;
         border-radius: 6px; padding: 0.5rem 0.75rem; margin: 0.5rem 0; }
  .msg { margin: 0.25rem 0; } .author { font-weight: 600; margin-right: 0.4rem; }
  .time { color: #888; font-size: 0.75rem; margin-left: 0.4rem; }
  .notice { color: #8a5a00; font-style: italic; margin: 0.25rem 0; }
  form { display: flex; gap: 0.5rem; } #author { width: 8rem; } #text { flex: 1; }
  input, button { font: inherit; padding: 0.4rem 0.6rem; }
</style>
</head>
<body>
<main>
  <header><h1>Room <span id="room"></span></h1><span id="status">connecting</span></header>
  <div id="log" aria-live="polite"></div>
  <form id="send">
    <input id="author" placeholder="your name" maxlength="32" required>
    <input id="text" placeholder="say something" maxlength="500" required autocomplete="off">
    <button>Send</button>
  </form>
</main>
<script>
const room = (new URLSearchParams(location.search).get("room") || "lobby").toLowerCase();
const base = "/rooms/" + encodeURIComponent(room);
const lastIdKey = "chat:" + room + ":last-event-id";
const log = document.getElementById("log");
const statusBadge = document.getElementById("status");
document.getElementById("room").textContent = room;
document.getElementById("author").value = localStorage.getItem("chat:author") || "";

function add(node) {
  const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
  log.appendChild(node);
  if (atBottom) log.scrollTop = log.scrollHeight;
}
function notice(text) {
  const line = document.createElement("div");
  line.className = "notice";
  line.textContent = text;
  add(line);
}
function show(message) {
  const line = document.createElement("div");
  line.className = "msg";
  const author = document.createElement("span");
  author.className = "author";
  author.textContent = message.author;  // textContent: never HTML from other users
  const time = document.createElement("span");
  time.className = "time";
  time.textContent = new Date(message.sent_at).toLocaleTimeString();
  line.append(author, message.text, time);
  add(line);
}
function remember(event) {
  if (event.lastEventId) sessionStorage.setItem(lastIdKey, event.lastEventId);
}

// A reload resumes too: a new EventSource cannot send Last-Event-ID, the query can.
const last = sessionStorage.getItem(lastIdKey);
const query = last ? "?lastEventId=" + encodeURIComponent(last) : "";
const source = new EventSource(base + "/events" + query);
function setStatus(text, kind) { statusBadge.textContent = text; statusBadge.className = kind; }
source.onopen = () => setStatus("connected", "open");
source.onerror = () => setStatus("reconnecting", "error");
source.onmessage = (event) => { remember(event); show(JSON.parse(event.data)); };
source.addEventListener("gap", (event) => {
  remember(event);
  const gap = JSON.parse(event.data);
  notice(gap.reason === "overflow"
    ? "You fell behind: " + gap.dropped + " messages were skipped."
    : "Some messages could not be recovered (" + gap.reason + ").");
});
source.addEventListener("restart", () => notice("The server is restarting; reconnecting..."));

document.getElementById("send").addEventListener("submit", async (event) => {
  event.preventDefault();
  const author = document.getElementById("author").value.trim();
  const text = document.getElementById("text");
  localStorage.setItem("chat:author", author);
  const response = await fetch(base + "/messages", {
    method: "POST",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify({author, text: text.value}),
  });
  if (response.ok) text.value = "";
  else notice("Not sent (" + response.status + ").");
});
</script>
</body>
</html>
"""


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8000)
