"""Scenario 5: a plain (sync) generator handed to each framework's SSE response."""

from __future__ import annotations

from benchmarks.apps import Implementation
from benchmarks.child import run_loop
from benchmarks.inprocess import Budget, loop_name, measure
from benchmarks.report import Report
from benchmarks.workload import Source, StreamSpec

NAME = "sync_iterator"
TITLE = "Scenario 5: sync iterator in process (µs per event)"
DESCRIPTION = """
Same in-process harness as scenario 1, but the handler returns `def gen(): for i in range(n):
yield i`, a generator that never blocks. Frameworks that cannot know that run each `next()` in
a worker thread (Litestar 2.25, sse-starlette and FastAPI hop to a thread per item); the floor
iterates it inline on the event loop. Default configuration of every library.
"""

NOTES = {
    "litestar": "one thread hop per item",
    "sse_starlette": "one thread hop per item",
    "fastapi": "thread hop per item, then two memory streams",
}


def budget(quick: bool) -> Budget:
    if quick:
        return Budget(events=1_000, repetitions=3, seconds=2.0, min_repetitions=2)
    return Budget(events=50_000, repetitions=7, seconds=40.0)


def run(impls: list[Implementation], quick: bool, env: dict[str, str]) -> Report:
    b = budget(quick)
    spec = StreamSpec(source=Source.SYNC)
    title = f"{b.events:,} events of int `i` from a sync generator"
    table = run_loop(measure(impls, spec, b, title, NOTES))
    return Report(
        NAME,
        TITLE,
        DESCRIPTION,
        quick,
        [table],
        environment={**env, "event loop": loop_name()},
    )
