"""The app of the load and churn soak tests (``tests.soak.load_app:app``), run under uvicorn.

Routes, all event streams of the plugin unless noted; none of them ever ends by itself, so
every stream ends because its client went away:

* ``/idle``: one event, then nothing but the plugin's pings (every ``PING_INTERVAL`` s);
* ``/events``: a small event every ``EVENT_PERIOD`` s; the generator's ``finally`` awaits;
* ``/big``: events of ``BIG_EVENT_BYTES``, back to back (each one overflows the socket
  buffers, so the send in flight waits for a client that may be gone); ``finally`` awaits;
* ``/sync``: a blocking sync generator, which the library runs in a worker thread;
* ``/sse``: a ``ServerSentEvent`` response (not a generator handler) with ``on_disconnect``;
* ``/stats`` (JSON): after a ``gc.collect()`` (and, with ``?trim=1``, a ``malloc_trim(0)``), the
  asyncio tasks, ``SSEPlugin.open_streams``, VmRSS, open fds, threads, gc figures and the
  ``COUNTS`` the routes keep.

``COUNTS`` per tracked route: ``<route>.started`` when its generator starts, ``.finally`` when
its ``finally`` is entered, ``.cleaned`` when that ``finally`` finished its awaits, and
``.finally_elsewhere`` when the ``finally`` ran outside the stream's own task (for an async
generator: closed by the garbage collector's finalizer, not by the stream) or, for ``/sync``,
outside its worker thread. Every started generator must be cleaned exactly once, by its
stream: a generator's ``finally`` runs at most once, so ``started == finally == cleaned`` and
no ``finally_elsewhere`` is the check. ``big.cut_in_send`` counts generators closed while
suspended at a ``yield``, i.e. while the library was sending their event.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import faulthandler
import gc
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

from litestar import Litestar, Request, get

from benchmarks.processes import raise_fd_limit, rss_kib
from litestar_sse import RawEvent, ServerSentEvent, SSEConfig, SSEPlugin, event_stream

PING_INTERVAL = 1.0
EVENT_PERIOD = 0.002
SYNC_PERIOD = 0.005
# More than the ~4 MiB a non-reading loopback peer absorbs (its receive queue plus the
# sender's autotuned send buffer), so that the send of an event is still in flight when the
# client goes.
BIG_EVENT_BYTES = 6 * 1024 * 1024
BIG_EVENT = RawEvent(b"data: " + b"x" * BIG_EVENT_BYTES + b"\r\n\r\n")


raise_fd_limit()  # 10,000 streams need 10,000 descriptors
# ``kill -USR1 <pid>`` writes every thread's stack to the server log: for a server that hangs.
faulthandler.register(signal.SIGUSR1, all_threads=True)

PLUGIN = SSEPlugin(SSEConfig(ping_interval=PING_INTERVAL))

_lock = threading.Lock()  # the sync route counts from its worker threads
COUNTS: Counter[str] = Counter()


def _count(name: str) -> None:
    with _lock:
        COUNTS[name] += 1


def _start(route: str) -> asyncio.Task[Any] | None:
    _count(f"{route}.started")
    return asyncio.current_task()


async def _cleanup(route: str, task: asyncio.Task[Any] | None) -> None:
    """The ``finally`` of a tracked async generator."""
    _count(f"{route}.finally")
    if asyncio.current_task() is not task:
        # Closed by the garbage collector's finalizer (a new task), not by the stream.
        _count(f"{route}.finally_elsewhere")
    # What a real generator does in its finally: release a resource over the network.
    await asyncio.sleep(0)
    await asyncio.sleep(0.001)
    _count(f"{route}.cleaned")


@get("/idle")
@event_stream
async def idle() -> AsyncIterator[str]:
    yield "open"
    await asyncio.get_running_loop().create_future()  # never resolved: pings only


@get("/events")
@event_stream
async def events() -> AsyncIterator[int]:
    task = _start("events")
    try:
        i = 0
        while True:
            yield i
            i += 1
            await asyncio.sleep(EVENT_PERIOD)
    finally:
        await _cleanup("events", task)


@get("/big")
@event_stream
async def big() -> AsyncIterator[RawEvent]:
    task = _start("big")
    in_send = False
    try:
        while True:
            in_send = True
            yield BIG_EVENT  # no await in between: a producer replaying what it holds
            in_send = False
    finally:
        if in_send:
            _count("big.cut_in_send")
        await _cleanup("big", task)


@get("/sync")
@event_stream
def sync_events() -> Iterator[int]:
    _count("sync.started")
    try:
        i = 0
        while True:
            time.sleep(SYNC_PERIOD)  # a blocking producer: the library runs it in a thread
            yield i
            i += 1
    finally:
        _count("sync.finally")
        if threading.current_thread() is threading.main_thread():
            _count("sync.finally_elsewhere")  # not in the worker thread that ran it
        _count("sync.cleaned")


@get("/sse")
async def sse() -> ServerSentEvent:
    _count("sse.responses")

    async def ticks() -> AsyncIterator[dict[str, Any]]:
        task = _start("sse")
        try:
            i = 0
            while True:
                yield {"data": {"tick": i}, "event": "tick", "id": str(i)}
                i += 1
                await asyncio.sleep(EVENT_PERIOD)
        finally:
            await _cleanup("sse", task)

    def on_disconnect() -> None:
        _count("sse.on_disconnect")

    return ServerSentEvent(ticks(), on_disconnect=on_disconnect)


def _malloc_trim() -> bool:
    """Hand the free pages of malloc's heap back to the system (glibc only)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        trim = libc.malloc_trim
    except (OSError, AttributeError, TypeError):
        return False
    trim(0)
    return True


@get("/stats", sync_to_thread=False)
def stats(request: Request[Any, Any, Any]) -> dict[str, Any]:
    collected = gc.collect()
    trimmed = request.query_params.get("trim") == "1" and _malloc_trim()
    with _lock:
        counts = dict(COUNTS)
    return {
        "tasks": len(asyncio.all_tasks()),
        "open_streams": PLUGIN.open_streams,
        "rss_kib": rss_kib(),
        "fds": len(os.listdir("/proc/self/fd")),
        "threads": threading.active_count(),
        "malloc_trimmed": trimmed,
        "gc_collected": collected,
        "gc_garbage": len(gc.garbage),
        "gc_objects": len(gc.get_objects()),
        "gc_counts": gc.get_count(),
        "counts": counts,
    }


app = Litestar([idle, events, big, sync_events, sse, stats], plugins=[PLUGIN])
