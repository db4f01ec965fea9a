"""Scenario 2: end to end through uvicorn and a real socket."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import subprocess
import sys
from typing import Any

from benchmarks.apps import Implementation
from benchmarks.peers_env import ROOT, child_env
from benchmarks.processes import ServerProcess
from benchmarks.report import Report, Row, Table
from benchmarks.server import http_setting, loop_setting
from benchmarks.stats import median, rotated, spread
from benchmarks.workload import StreamSpec

NAME = "end_to_end"
TITLE = "Scenario 2: end to end through uvicorn (wall time, events/s)"
DESCRIPTION = """
Every implementation runs in its own uvicorn process (one worker) on 127.0.0.1; all servers
are started first and then measured in turn, in a rotated order per repetition. A separate
client process sends `GET /stream?n=N` and reads with large non-blocking `recv` calls until the
server closes the connection; the wall time runs from the request to the last byte. The
concurrent run opens C connections at once and takes the wall time until the last stream
ended; its events/s is the aggregate over all clients. Each client counts the `data:` fields it
received: a stream with a missing event is reported as wrong instead of being timed. Handler:
async generator of the int `i`, default configuration of every library.
"""


@dataclasses.dataclass(frozen=True)
class Settings:
    events: int
    repetitions: int
    clients: int
    # Each concurrent client gets a shorter stream than the single client, so that the slowest
    # peer (FastAPI, ~30x the floor) keeps the run within its time budget; the aggregate
    # events/s barely depends on the stream length at these sizes.
    events_per_client: int
    concurrent_repetitions: int


def settings(quick: bool) -> Settings:
    if quick:
        return Settings(20_000, 2, 10, 1_000, 1)
    return Settings(100_000, 5, 50, 2_000, 3)


def _client(port: int, n: int, clients: int) -> dict[str, Any]:
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.stream_client",
            "--port",
            str(port),
            "--n",
            str(n),
            "--clients",
            str(clients),
            "--timeout",
            "240",
        ],
        capture_output=True,
        env=child_env(),
        cwd=ROOT,
        timeout=300,
        check=True,
    )
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


def _problem(result: dict[str, Any], n: int) -> str | None:
    if result["timed_out"]:
        return f"{result['timed_out']} streams did not finish"
    if any(status != 200 for status in result["status"]):
        return f"HTTP status {sorted(set(result['status']))}"
    wrong = [count for count in result["events"] if count != n]
    if wrong:
        return f"{len(wrong)} streams had {wrong[0]} events instead of {n}"
    return None


def _measure(
    servers: dict[str, ServerProcess], n: int, clients: int, repetitions: int
) -> tuple[dict[str, list[float]], dict[str, str]]:
    walls: dict[str, list[float]] = {name: [] for name in servers}
    problems: dict[str, str] = {}
    for rep in range(repetitions):
        for name in rotated(list(servers), rep):
            if name in problems:
                continue
            try:
                result = _client(servers[name].port, n, clients)
            except (subprocess.SubprocessError, ValueError) as exc:
                problems[name] = f"client failed: {exc}"
                continue
            problem = _problem(result, n)
            if problem:
                problems[name] = problem
            else:
                walls[name].append(float(result["wall"]))
    return walls, problems


def _table(
    title: str,
    names: list[str],
    walls: dict[str, list[float]],
    problems: dict[str, str],
    events: int,
    extra_rows: list[Row],
) -> Table:
    rows = []
    for name in names:
        if name in problems or not walls.get(name):
            rows.append(Row(name, None, note=problems.get(name, "not measured")))
            continue
        wall = median(walls[name])
        rows.append(
            Row(
                name,
                wall,
                spread(walls[name]),
                extra={
                    "events/s": f"{events / wall:,.0f}",
                    "runs": str(len(walls[name])),
                },
            )
        )
    return Table(title, "wall s", rows + extra_rows, ["events/s", "runs"], digits=3)


def run(impls: list[Implementation], quick: bool, env: dict[str, str]) -> Report:
    s = settings(quick)
    spec = StreamSpec()
    chosen = [impl for impl in impls if not impl.object_only]
    failed: list[Row] = []
    with contextlib.ExitStack() as stack:
        # Started together: an idle server costs nothing, and their start-up overlaps.
        servers = {i.name: stack.enter_context(ServerProcess(i.name, spec, NAME)) for i in chosen}
        for name, server in list(servers.items()):
            try:
                server.wait_port()
                # Warm-up (imports, first-call caches) and a first check of the output.
                problem = _problem(_client(server.port, 1000, 1), 1000)
            except (RuntimeError, subprocess.SubprocessError, ValueError) as exc:
                problem = f"server failed: {exc}"
            if problem:
                failed.append(Row(name, None, note=problem))
                del servers[name]
        names = list(servers)
        single = _measure(servers, s.events, 1, s.repetitions)
        together = _measure(servers, s.events_per_client, s.clients, s.concurrent_repetitions)
        for server in servers.values():
            server.terminate()
    tables = [
        _table(f"one client, {s.events:,} events", names, *single, s.events, failed),
        _table(
            f"{s.clients} concurrent clients, {s.events_per_client:,} events each",
            names,
            *together,
            s.events_per_client * s.clients,
            failed,
        ),
    ]
    import uvicorn

    how = f"uvicorn {uvicorn.__version__}, --http {http_setting()} --loop {loop_setting()}"
    return Report(
        NAME,
        TITLE,
        DESCRIPTION,
        quick,
        tables,
        environment={**env, "server": f"{how}, one worker process per implementation"},
    )
