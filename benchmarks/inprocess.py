"""The in-process measuring engine shared by the data-path and sync-iterator scenarios.

Every implementation's whole app is called directly (see ``asgi_harness``); within each
repetition the implementations run one after the other in a rotated order, and the metric is
the median over repetitions of wall time divided by the number of events.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import importlib.metadata
import json
import time
from collections.abc import Mapping
from typing import TypeVar

from benchmarks.apps import ASGIApp, Implementation, Unsupported
from benchmarks.asgi_harness import Lifespan, Response, call, data_values
from benchmarks.report import Row, Table
from benchmarks.stats import median, rotated, spread
from benchmarks.workload import Payload, StreamSpec, item_fields

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Budget:
    events: int
    repetitions: int
    # Stop adding repetitions (keeping at least ``min_repetitions``) once this many seconds
    # have passed, so a slow or busy machine shortens the run instead of blowing its limit.
    seconds: float
    min_repetitions: int = 3


def loop_name() -> str:
    try:
        return f"uvloop {importlib.metadata.version('uvloop')}"
    except importlib.metadata.PackageNotFoundError:
        return "asyncio"


def _expected_data(payload: Payload, i: int) -> object:
    return item_fields(i) if payload is Payload.OBJECT else i


def verify(body: bytes, payload: Payload, n: int) -> str | None:
    """None when the body holds exactly the n expected events, else what is wrong."""
    values = data_values(body)
    if len(values) != n:
        return f"{len(values)} events instead of {n}"
    for i in (0, n // 2, n - 1):
        try:
            got = json.loads(values[i])
        except ValueError:
            return f"event {i} is not JSON: {values[i][:60]!r}"
        if got != _expected_data(payload, i):
            return f"event {i} carries {values[i][:80]!r}"
    return None


def _build(
    impls: list[Implementation], spec: StreamSpec, rows: dict[str, Row]
) -> dict[str, ASGIApp]:
    apps: dict[str, ASGIApp] = {}
    for impl in impls:
        if impl.object_only and spec.payload is not Payload.OBJECT:
            continue  # the extra model-class rows mean nothing for int payloads
        try:
            apps[impl.name] = impl.build(spec)
        except Unsupported as exc:
            rows[impl.name] = Row(impl.name, None, note=str(exc))
        except Exception as exc:
            rows[impl.name] = Row(impl.name, None, note=f"build failed: {exc!r}")
    return apps


async def _check(app: ASGIApp, spec: StreamSpec, n: int) -> tuple[Response | None, str | None]:
    """One captured run, and what is wrong with its output if anything."""
    try:
        response = await call(app, n, capture=True)
    except Exception as exc:
        return None, f"failed: {type(exc).__name__}: {exc}"
    media = dict(response.headers).get(b"content-type", b"")
    if response.status != 200 or not media.startswith(b"text/event-stream"):
        return None, f"wrong output: status {response.status}, content-type {media!r}"
    problem = verify(response.body, spec.payload, n)
    return response, (f"wrong output: {problem}" if problem else None)


async def measure(
    impls: list[Implementation],
    spec: StreamSpec,
    budget: Budget,
    title: str,
    notes: Mapping[str, str] | None = None,
) -> Table:
    here = [impl for impl in impls if not impl.interpreter]
    table = await measure_here(here, spec, budget, title, notes)
    for impl in impls:
        if impl.interpreter:
            table.rows.append(measure_elsewhere(impl, spec, budget))
    return table


def measure_elsewhere(impl: Implementation, spec: StreamSpec, budget: Budget) -> Row:
    """Measure ``impl`` beside the floor in a process of its own python (Litestar 3)."""
    from benchmarks import inprocess_child

    try:
        floor, row = inprocess_child.run_in_child(impl, spec, budget)
    except Exception as exc:
        return Row(impl.name, None, note=f"child process failed: {exc}")
    if floor is not None and floor.value and row.value is not None:
        row.note = (
            f"own process; its floor there {floor.value:.2f} µs, "
            f"{row.value / floor.value:.2f}x of it. {row.note}"
        ).strip()
    return row


async def measure_here(
    impls: list[Implementation],
    spec: StreamSpec,
    budget: Budget,
    title: str,
    notes: Mapping[str, str] | None = None,
) -> Table:
    rows: dict[str, Row] = {}
    n = budget.events
    apps = _build(impls, spec, rows)
    checked: dict[str, Response] = {}
    samples: dict[str, list[float]] = {}
    mismatched: dict[str, int] = {}
    failed: dict[str, str] = {}
    async with contextlib.AsyncExitStack() as stack:
        for name, app in list(apps.items()):
            try:
                await stack.enter_async_context(Lifespan(app))
            except Exception as exc:
                rows[name] = Row(name, None, note=f"lifespan failed: {exc!r}")
                del apps[name]
        for name, app in apps.items():
            response, problem = await _check(app, spec, n)
            if problem or response is None:
                rows[name] = Row(name, None, note=problem or "no response")
            else:
                checked[name] = dataclasses.replace(response, body=b"")  # sizes only
                samples[name] = []
        # Everything alive now (apps, frameworks) is moved out of the collector's sight: the
        # collections between runs become cheap and no full collection of a heap built by
        # others lands inside a timed run.
        gc.freeze()
        started = time.monotonic()
        for rep in range(budget.repetitions):
            if rep >= budget.min_repetitions and time.monotonic() - started > budget.seconds:
                break
            for name in rotated(list(samples), rep):
                if name in failed:
                    continue
                # Collect now so that one implementation's garbage is not another's pause.
                gc.collect()
                t0 = time.perf_counter()
                try:
                    response = await call(apps[name], n)
                except Exception as exc:
                    failed[name] = f"failed in a timed run: {type(exc).__name__}: {exc}"
                    continue
                elapsed = time.perf_counter() - t0
                if response.body_bytes != checked[name].body_bytes:
                    mismatched[name] = response.body_bytes
                samples[name].append(elapsed / n * 1e6)
        gc.unfreeze()
    for name, reason in failed.items():
        rows[name] = Row(name, None, note=reason)
        del samples[name]
    for name, values in samples.items():
        note = (notes or {}).get(name, "")
        if name in mismatched:
            note += f" body size varied ({mismatched[name]} vs {checked[name].body_bytes} bytes)"
        rows[name] = Row(
            name,
            median(values),
            spread(values),
            extra={
                "bytes/event": f"{checked[name].body_bytes / n:.1f}",
                "body sends": f"{checked[name].body_messages:,}",
                "runs": str(len(values)),
            },
            note=note.strip(),
        )
    ordered = [rows[impl.name] for impl in impls if impl.name in rows]
    return Table(title, "µs/event", ordered, extra_columns=["bytes/event", "body sends", "runs"])
