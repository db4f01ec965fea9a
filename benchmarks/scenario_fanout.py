"""Scenario 4: broadcast fan-out, one topic to thousands of subscribers."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

from benchmarks.apps import FLOOR, OURS, Implementation
from benchmarks.fanout_inprocess import Sample, Workload
from benchmarks.inprocess import loop_name
from benchmarks.peers_env import ROOT, child_env
from benchmarks.processes import (
    CLOCK_TICKS,
    LOGS,
    START_TIMEOUT,
    cpu_seconds,
    read_line,
    stop_process,
)
from benchmarks.report import Report, Row, Table
from benchmarks.server import http_setting, loop_setting
from benchmarks.stats import median, rotated, spread

NAME = "fanout"
TITLE = "Scenario 4: broadcast fan-out (one topic, thousands of subscribers)"
DESCRIPTION = """
One topic, N subscribers, every event delivered to all of them. **In process**: each
subscriber is a whole request to the app, on the same event loop as the publisher (as in a
server process, minus the sockets); its ASGI `send` counts events and logs the time. Capacity:
events published in bursts of 10, yielding to the loop between bursts, as fast as it goes;
deliveries/s = N x events / time until the last subscriber had them all. Steady rate: events
published at a fixed rate in bursts; latency = time of the ASGI send that carried an event
minus the time it was published, for every delivery of 1,000 subscribers spread over the
subscription order (the order a publish wakes them in). `gc.freeze()` rows freeze the
collector's generations once the subscribers are open, as a server tuned for many long-lived
connections would; the full-collection columns show what it spares. **End to end**: uvicorn
in one process with N streams from a client process on 127.0.0.1 (raw asyncio protocols, no
HTTP library); the server publishes from a background task on its own loop, each event
carrying its publish time (same machine, same monotonic clock), and the client turns every
event of 500 streams into a latency. Server and client CPU tell which side was the limit.

No other Python SSE library has a broadcast: sse-starlette and FastAPI leave pub/sub to the
app. `litestar channels` is Litestar 2.25's ChannelsPlugin (memory backend) feeding Litestar's
`ServerSentEvent`, what a Litestar app without this package would use; `raw` is a hand-written
ASGI fan-out (shared list of pre-formatted events, one future per idle subscriber, everything
new in one send), with no ids, history, pings or slow-subscriber policy.
"""

FREEZE = f"{OURS} + gc.freeze()"
CHANNELS = "litestar channels"
NOTES = {
    FLOOR: "hand-written fan-out: no ids, history, pings or framework (floor)",
    CHANNELS: "one ASGI send per event and subscriber (no coalescing); one repetition",
}
# (name shown, hub, gc.freeze after opening)
VARIANTS = (
    (FLOOR, "raw", False),
    (OURS, OURS, False),
    (FREEZE, OURS, True),
    (CHANNELS, CHANNELS, False),
)


@dataclasses.dataclass(frozen=True)
class Settings:
    inprocess: Workload
    repetitions: int
    variants: tuple[str, ...]
    e2e_streams: int
    e2e_rate: float
    e2e_burst: int
    e2e_seconds: float
    e2e_capacity_events: int


def settings(quick: bool) -> Settings:
    if quick:
        return Settings(
            inprocess=Workload(1_000, 200, 10, 100.0, 5, 0.75),
            repetitions=1,
            # Channels need seconds to drain what they cannot keep up with: full runs only.
            variants=(FLOOR, OURS, FREEZE),
            e2e_streams=1_000,
            e2e_rate=100.0,
            e2e_burst=5,
            e2e_seconds=1.0,
            e2e_capacity_events=400,
        )
    return Settings(
        inprocess=Workload(5_000, 400, 10, 100.0, 5, 5.0),
        repetitions=3,
        variants=(FLOOR, OURS, FREEZE, CHANNELS),
        e2e_streams=5_000,
        e2e_rate=100.0,
        e2e_burst=5,
        e2e_seconds=5.0,
        e2e_capacity_events=1_000,
    )


# -- in process ---------------------------------------------------------------------------------


def _measure_in_child(hub: str, freeze: bool, workload: Workload) -> Sample:
    """One run in a fresh process: the collector then sees a server's heap, not the runner's
    (which has every peer of the other scenarios imported)."""
    argv = ["benchmarks.fanout_inprocess", "--hub", hub]
    argv += ["--workload", json.dumps(dataclasses.asdict(workload))]
    if freeze:
        argv.append("--freeze")
    child = Process(argv, f"inprocess_fanout_{hub.replace(' ', '_')}.log")
    try:
        return Sample.from_json(child.expect("RESULT", 600))
    finally:
        child.stop()


def _inprocess(s: Settings) -> list[Table]:
    variants = [variant for variant in VARIANTS if variant[0] in s.variants]
    samples: dict[str, list[Sample]] = {name: [] for name, _, _ in variants}
    failures: dict[str, str] = {}
    for repetition in range(s.repetitions):
        for name in rotated([name for name, _, _ in variants], repetition):
            if name in failures or (name == CHANNELS and repetition > 0):
                continue  # channels need a minute per run (a backlog to drain): once is enough
            _, hub, freeze = next(v for v in variants if v[0] == name)
            try:
                samples[name].append(_measure_in_child(hub, freeze, s.inprocess))
            except (RuntimeError, OSError, subprocess.SubprocessError, ValueError) as exc:
                failures[name] = f"failed: {exc}"
    w = s.inprocess
    capacity_rows, steady_rows = [], []
    for name, _, _ in variants:
        runs = samples[name]
        if not runs:
            note = failures.get(name, "not measured")
            capacity_rows.append(Row(name, None, note=note))
            steady_rows.append(Row(name, None, note=note))
            continue
        caps = [r.capacity for r in runs]
        per_delivery = [1e6 / c.deliveries_per_s for c in caps]
        capacity_rows.append(
            Row(
                name,
                median(per_delivery),
                spread(per_delivery),
                extra={
                    "deliveries/s": f"{median([c.deliveries_per_s for c in caps]):,.0f}",
                    "sends per subscriber": f"{median([c.sends_per_subscriber for c in caps]):.0f}",
                },
                note=NOTES.get(name, ""),
            )
        )
        rates = [r.steady for r in runs]
        p99 = [r.p99_ms for r in rates]
        achieved = median([r.deliveries_per_s for r in rates])
        collections = median([r.gc_full_collections for r in rates])
        longest = median([r.gc_longest_ms for r in rates])
        steady_rows.append(
            Row(
                name,
                median(p99),
                spread(p99),
                extra={
                    "p50 ms": f"{median([r.p50_ms for r in rates]):.1f}",
                    "max ms": f"{median([r.max_ms for r in rates]):.1f}",
                    "deliveries/s": f"{achieved:,.0f} (of {w.subscribers * w.rate:,.0f})",
                    "full GCs (longest ms)": f"{collections:g} ({longest:.0f})",
                },
                note=NOTES.get(name, ""),
            )
        )
    events = w.capacity_events
    return [
        Table(
            f"In process, capacity: {w.subscribers:,} subscribers x {events} events",
            "µs per delivery",
            capacity_rows,
            ["deliveries/s", "sends per subscriber"],
            digits=3,
        ),
        Table(
            f"In process, steady rate: {w.subscribers:,} subscribers, {w.rate:g} events/s in "
            f"bursts of {w.burst} for {w.seconds:g} s",
            "p99 latency ms",
            steady_rows,
            ["p50 ms", "max ms", "deliveries/s", "full GCs (longest ms)"],
            digits=1,
        ),
    ]


# -- end to end ---------------------------------------------------------------------------------


class Process:
    """A child process speaking lines on stdout (and stdin); always killed on exit."""

    def __init__(self, argv: list[str], log_name: str, *, stdin: bool = False) -> None:
        LOGS.mkdir(parents=True, exist_ok=True)
        with (LOGS / log_name).open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", *argv],
                stdin=subprocess.PIPE if stdin else None,
                stdout=subprocess.PIPE,
                stderr=log,
                env=child_env(),
                cwd=ROOT,
            )

    def expect(self, prefix: str, timeout: float) -> str:
        line = read_line(self.proc, timeout)
        if not line.startswith(prefix):
            raise RuntimeError(f"expected {prefix!r} from {self.proc.args!r}, got {line!r}")
        return line[len(prefix) :].strip()

    def tell(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{line}\n".encode())
        self.proc.stdin.flush()

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        stop_process(self.proc)


@contextlib.contextmanager
def _processes(streams: int) -> Iterator[tuple[Process, Process, str]]:
    server = Process(["benchmarks.fanout_server"], "server_fanout.log")
    client: Process | None = None
    try:
        port = int(server.expect("PORT", START_TIMEOUT))
        client = Process(
            ["benchmarks.fanout_client", "--port", str(port), "--streams", str(streams)],
            "client_fanout.log",
            stdin=True,
        )
        yield server, client, f"http://127.0.0.1:{port}"
    finally:
        if client is not None:
            with contextlib.suppress(OSError):
                client.tell("STOP")
            client.stop()
        server.stop()


def _http(url: str, method: str = "GET") -> dict[str, object]:
    request = urllib.request.Request(url, method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        result: dict[str, object] = json.loads(response.read())
    return result


@dataclasses.dataclass
class Phase:
    deliveries_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    server_cpu: float
    client_cpu: float
    # What every other process of the machine used meanwhile, in % of one core.
    others_cpu: float
    complete: bool
    min_seen: int


def machine_cpu_seconds() -> float:
    """Busy CPU seconds of the whole machine, all cores (from /proc/stat)."""
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / CLOCK_TICKS


class Session:
    """The server and client of the end-to-end run, driven one publishing phase at a time."""

    def __init__(self, server: Process, client: Process, base: str, streams: int) -> None:
        self.server = server
        self.client = client
        self.base = base
        self.streams = streams
        self.published = 0

    def phase(self, events: int, rate: float, burst: int) -> Phase:
        """Publish ``events`` (``rate`` 0: as fast as it goes); wait until all arrived."""
        self.published += events
        timeout = 30.0 + events / max(rate, 1.0) * 3
        cpu = (self.server.cpu(), self.client.cpu(), machine_cpu_seconds())
        started = time.monotonic()
        _http(f"{self.base}/publish?events={events}&rate={rate:g}&burst={burst}", "POST")
        self.client.tell(f"EXPECT {self.published} {timeout:g}")
        done = json.loads(self.client.expect("DONE", timeout + 30))
        window = time.monotonic() - started
        used = (self.server.cpu() - cpu[0], self.client.cpu() - cpu[1])
        others = machine_cpu_seconds() - cpu[2] - sum(used)
        elapsed = float(done["last_at"]) - started
        delivered = self.streams * events if done["complete"] else float(done["received"])
        return Phase(
            deliveries_per_s=delivered / elapsed,
            p50_ms=float(done["p50_ms"]),
            p99_ms=float(done["p99_ms"]),
            max_ms=float(done["max_ms"]),
            server_cpu=used[0] / window * 100,
            client_cpu=used[1] / window * 100,
            others_cpu=max(0.0, others / window * 100),
            complete=bool(done["complete"]),
            min_seen=int(done["min_seen"]),
        )


def _limit(phase: Phase) -> str:
    if not phase.complete:
        return "not every event arrived in time"
    if phase.server_cpu >= 85:
        return "server-bound: its one event loop was busy the whole time"
    if phase.client_cpu >= 85:
        return "client-bound: the client could not read faster"
    if phase.others_cpu >= 30:
        return f"machine busy: other processes used {phase.others_cpu:.0f}% of a core meanwhile"
    return "neither process saturated: events went out as published"


def _e2e(s: Settings) -> tuple[list[Table], list[str]]:
    notes: list[str] = []
    n = s.e2e_streams
    try:
        with _processes(n) as (server, client, base):
            ready = json.loads(client.expect("READY", 120))
            deadline = time.monotonic() + 30
            while _http(f"{base}/stats")["subscribers"] != n:
                if time.monotonic() > deadline:
                    raise RuntimeError("not every stream subscribed in time")
                time.sleep(0.05)
            notes.append(f"End to end: {n:,} streams opened in {ready['seconds']:.1f} s.")
            session = Session(server, client, base, n)
            steady_events = int(s.e2e_rate * s.e2e_seconds) // s.e2e_burst * s.e2e_burst
            steady = session.phase(steady_events, s.e2e_rate, s.e2e_burst)
            flood = session.phase(s.e2e_capacity_events, 0.0, 10)
    except (RuntimeError, OSError, ValueError, subprocess.SubprocessError) as exc:
        failed = Row(OURS, None, note=f"failed: {exc}")
        return [Table("End to end", "p99 latency ms", [failed])], notes

    def cpu(phase: Phase) -> dict[str, str]:
        return {
            "server CPU %": f"{phase.server_cpu:.0f}",
            "client CPU %": f"{phase.client_cpu:.0f}",
        }

    target = n * s.e2e_rate
    steady_row = Row(
        OURS,
        steady.p99_ms,
        extra={
            "p50 ms": f"{steady.p50_ms:.1f}",
            "max ms": f"{steady.max_ms:.1f}",
            "deliveries/s": f"{steady.deliveries_per_s:,.0f} (of {target:,.0f})",
            **cpu(steady),
        },
        note=_limit(steady),
    )
    flood_row = Row(
        OURS,
        1e6 / flood.deliveries_per_s,
        extra={
            "deliveries/s": f"{flood.deliveries_per_s:,.0f}",
            "p99 ms": f"{flood.p99_ms:.1f}",
            **cpu(flood),
        },
        note=_limit(flood),
    )
    tables = [
        Table(
            f"End to end (uvicorn, loopback), steady rate: {n:,} streams, {s.e2e_rate:g} "
            f"events/s in bursts of {s.e2e_burst} for {s.e2e_seconds:g} s",
            "p99 latency ms",
            [steady_row],
            ["p50 ms", "max ms", "deliveries/s", "server CPU %", "client CPU %"],
            digits=1,
        ),
        Table(
            f"End to end (uvicorn, loopback), capacity: {n:,} streams x "
            f"{s.e2e_capacity_events:,} events in bursts of 10",
            "µs per delivery",
            [flood_row],
            ["deliveries/s", "p99 ms", "server CPU %", "client CPU %"],
            digits=3,
        ),
    ]
    return tables, notes


def run(impls: list[Implementation], quick: bool, env: dict[str, str]) -> Report:
    s = settings(quick)
    tables = _inprocess(s)
    e2e_tables, notes = _e2e(s)
    server = f"uvicorn, --http {http_setting()} --loop {loop_setting()}, one process"
    return Report(
        NAME,
        TITLE,
        DESCRIPTION,
        quick,
        [*tables, *e2e_tables],
        notes=[
            *notes,
            *(
                []
                if CHANNELS in s.variants
                else [f"Quick mode leaves out `{CHANNELS}`: it needs seconds to drain its backlog."]
            ),
            "Publishing runs on the event loop that serves the streams: a publish costs the "
            "publisher a few µs and never waits for subscribers; the work is in the N sends "
            "that follow, and events published together share one send per subscriber. At a "
            "steady rate, latency is mostly how long one event takes to reach the last of the N "
            "subscribers. A publishing task on the same loop gets its turn between two rounds "
            "of sends, so when the sends cannot keep up it is slowed down (deliveries/s below "
            "the target) instead of latency growing without bound.",
        ],
        environment={**env, "event loop": loop_name(), "server": server},
    )
