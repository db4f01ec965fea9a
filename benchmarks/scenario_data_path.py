"""Scenario 1: the data path, in process."""

from __future__ import annotations

from benchmarks.apps import Implementation
from benchmarks.child import run_loop
from benchmarks.inprocess import Budget, loop_name, measure
from benchmarks.report import Report, Table
from benchmarks.workload import Payload, StreamSpec

NAME = "data_path"
TITLE = "Scenario 1: data path in process (µs per event)"
DESCRIPTION = """
Each implementation's whole ASGI app is called directly with a fake server: `send` only counts
bytes, `receive` returns the GET request and then `http.disconnect` once the final body chunk
was sent. The handler is an async generator of `n` items: the int `i`, or a five-field record
(litestar_sse is handed the typed object and encodes it; Litestar 2.25 and sse-starlette get
msgspec-encoded JSON text from the handler, since they cannot serialize objects; FastAPI
validates and serializes its pydantic model itself). One captured run per implementation is
parsed first: the event count and the first, middle and last data must be right, and every
timed run must send exactly that many bytes. No pings fire during a run: the ping variant
measures what merely having the keep-alive machinery costs on the data path.
"""

PING = 15.0


def budget(quick: bool) -> Budget:
    if quick:
        return Budget(events=10_000, repetitions=3, seconds=4.0, min_repetitions=2)
    return Budget(events=50_000, repetitions=9, seconds=30.0)


def _note(spec: StreamSpec) -> dict[str, str]:
    if spec.ping is None:
        return {"sse_starlette": "its default pings every 15 s", "fastapi": "always pings (15 s)"}
    return {"fastapi": "always pings (15 s), not configurable"}


def _variants(quick: bool) -> list[tuple[Payload, float | None]]:
    """Quick mode skips objects-with-ping: FastAPI alone needs ~1 s per run of every table."""
    variants = [(Payload.INT, None), (Payload.INT, PING), (Payload.OBJECT, None)]
    return variants if quick else [*variants, (Payload.OBJECT, PING)]


async def _run(impls: list[Implementation], quick: bool) -> list[Table]:
    tables = []
    for payload, ping in _variants(quick):
        spec = StreamSpec(payload=payload, ping=ping)
        what = "int `i`" if payload is Payload.INT else "five-field record as JSON"
        how = "default configuration" if ping is None else f"keep-alive ping every {PING:g} s"
        b = budget(quick)
        tables.append(
            await measure(
                impls,
                spec,
                b,
                f"{b.events:,} events of {what}, {how}",
                _note(spec),
            )
        )
    return tables


def run(impls: list[Implementation], quick: bool, env: dict[str, str]) -> Report:
    tables = run_loop(_run(impls, quick))
    return Report(
        NAME,
        TITLE,
        DESCRIPTION,
        quick,
        tables,
        environment={**env, "event loop": loop_name()},
    )
