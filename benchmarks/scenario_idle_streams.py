"""Scenario 3: many idle streams kept alive by pings."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import subprocess
import sys
import time

from benchmarks.apps import FLOOR, Implementation
from benchmarks.peers_env import ROOT, child_env
from benchmarks.processes import LOGS, ServerProcess, cpu_seconds, read_line
from benchmarks.report import Report, Row, Table
from benchmarks.server import http_setting, loop_setting
from benchmarks.stats import median, rotated
from benchmarks.workload import StreamSpec

NAME = "idle_streams"
TITLE = "Scenario 3: idle streams (server memory and CPU per open stream)"
DESCRIPTION = """
One uvicorn process per implementation. A client process (asyncio protocols, no task per
stream) first opens and closes a few streams to warm the server up; then the server's RSS is
read (`VmRSS`, /proc/PID/status), N streams are opened, each receives one event, and the
server pings every stream every second while the window lasts. RSS per stream = (RSS at the
end of the window - RSS before) / N. CPU = server utime+stime over the window (/proc/PID/stat),
in % of one core. Pings = comment lines (`:`) each client received between its READY and STOP
(shown with the count that span allows); a client with more than one fewer counts as missing
pings. The floor is a raw ASGI
app holding the stream open without pings; Litestar 2.25 cannot ping, so both are measured for
memory only, over a short settle window (the same window as everyone in quick mode).

The full run measures one implementation after the other. The quick run, to fit in its minute,
runs them all at once (every server and client in its own process, phases in lockstep): with
500 streams the servers need only a few % of a core in total, but treat its CPU column as
indicative.
"""

PING = 1.0
SETTLE = 0.5  # window of the implementations that cannot ping: memory only
NO_PING = {FLOOR, "litestar"}
NOTES = {
    FLOOR: "holds the stream open, no pings (floor)",
    "litestar": "no ping support: memory only",
    "fastapi": "1 s interval by patching private `fastapi.routing._PING_INTERVAL`",
}


@dataclasses.dataclass(frozen=True)
class Settings:
    streams: tuple[int, ...]
    window: float
    parallel: int
    # All implementations measured at the same time, each in its own server and client
    # process. Only in quick mode: 500 streams cost the servers a few % of a core together,
    # while at 10,000 the slowest alone can take a whole core and would disturb the others.
    together: bool


def settings(quick: bool) -> Settings:
    if quick:
        return Settings((500,), 3.0, 250, together=True)
    return Settings((3_000, 10_000), 10.0, 500, together=False)


@dataclasses.dataclass
class Sample:
    rss_per_stream_kib: float
    cpu_percent: float
    client_cpu_percent: float
    pings_min: int
    pings_median: float
    # Pings a client could get: its own window (READY to STOP) over the interval.
    pings_expected: int
    missing: int
    failed: int
    open_seconds: float


class Session:
    """One idle client process against one server, driven phase by phase (WARM / GO / READY /
    STOP, see ``idle_client``) so that several sessions can run in lockstep."""

    def __init__(self, server: ServerProcess, count: int, parallel: int) -> None:
        self.server = server
        self.count = count
        # Room for a healthy server to open them all, not for a saturated one to crawl on.
        self.open_timeout = 30.0 + count / 200
        LOGS.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "benchmarks.idle_client", "--port", str(server.port)]
        argv += ["--streams", str(count), "--parallel", str(parallel)]
        argv += ["--open-timeout", str(self.open_timeout)]
        with (LOGS / f"client_{server.log_stem}.log").open("wb") as log:
            self.client = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env=child_env(),
                cwd=ROOT,
            )
        self.rss_before = self.rss_open = 0
        self.cpu = [0.0, 0.0]
        self.client_cpu = [0.0, 0.0]
        self.ready: dict[str, float] = {}
        self.pings: list[int] = []
        self.client_window = 0.0

    def _expect(self, prefix: str, timeout: float) -> str:
        line = read_line(self.client, timeout)
        if not line.startswith(prefix):
            raise RuntimeError(
                f"idle client of {self.server.impl}: expected {prefix!r}, got {line!r}"
            )
        return line[len(prefix) :].strip()

    def _tell(self, word: str) -> None:
        assert self.client.stdin is not None
        self.client.stdin.write(f"{word}\n".encode())
        self.client.stdin.flush()

    def warm(self) -> None:
        self._expect("WARM", 60)
        self.rss_before = self.server.rss_kib()

    def go(self) -> None:
        self._tell("GO")

    def await_ready(self) -> None:
        self.ready = json.loads(self._expect("READY", self.open_timeout + 60))

    def mark_cpu(self, index: int) -> None:
        self.cpu[index] = self.server.cpu_seconds()
        # The client's own load, to tell a late ping from a client too busy to read it.
        self.client_cpu[index] = cpu_seconds(self.client.pid)

    def stop(self) -> None:
        self.rss_open = self.server.rss_kib()
        self._tell("STOP")

    def collect(self) -> None:
        result = json.loads(self._expect("RESULT", 60))
        self.pings = result["pings"]
        self.client_window = float(result["window"])
        self.client.wait(timeout=30)

    def kill(self) -> None:
        if self.client.poll() is None:
            self.client.kill()
            self.client.wait(timeout=5)

    def sample(self, window: float) -> Sample:
        expected = int(self.client_window / PING)
        return Sample(
            rss_per_stream_kib=(self.rss_open - self.rss_before) / max(1, self.ready["opened"]),
            cpu_percent=(self.cpu[1] - self.cpu[0]) / window * 100,
            client_cpu_percent=(self.client_cpu[1] - self.client_cpu[0]) / window * 100,
            pings_min=min(self.pings, default=0),
            pings_median=median(self.pings) if self.pings else 0.0,
            pings_expected=expected,
            missing=sum(1 for p in self.pings if p < expected - 1),
            failed=int(self.ready["failed"]),
            open_seconds=float(self.ready["seconds"]),
        )


def _lockstep(sessions: list[Session], window: float) -> float:
    """Run the sessions through their phases together; returns the measured window."""
    for session in sessions:
        session.warm()
    for session in sessions:
        session.go()
    for session in sessions:
        session.await_ready()
    for session in sessions:
        session.mark_cpu(0)
    t0 = time.monotonic()
    time.sleep(window)
    for session in sessions:
        session.mark_cpu(1)
    measured = time.monotonic() - t0
    for session in sessions:
        session.stop()
    for session in sessions:
        session.collect()
    return measured


def _row(name: str, sample: Sample, count: int) -> Row:
    pinging = name not in NO_PING
    notes = [NOTES.get(name, "")]
    if pinging and sample.missing:
        notes.insert(0, f"{sample.missing} clients missed pings")
    rss: float | None = sample.rss_per_stream_kib
    if sample.failed > count // 100:
        # Half-opened connections hold some memory, and it would be spread over too few
        # streams: the figure would not compare with the others.
        rss = None
        notes.insert(0, f"only {count - sample.failed} of {count} streams opened in time")
    elif sample.failed:
        notes.insert(0, f"{sample.failed} streams failed to open")
    return Row(
        name,
        rss,
        extra={
            "CPU % of a core": f"{sample.cpu_percent:.1f}" if pinging else "-",
            "client CPU %": f"{sample.client_cpu_percent:.0f}",
            "pings min / median": (
                f"{sample.pings_min} / {sample.pings_median:g} (of {sample.pings_expected})"
                if pinging
                else "n/a"
            ),
            "open time s": f"{sample.open_seconds:.1f}",
        },
        note="; ".join(n for n in notes if n),
    )


def _round(impls: list[Implementation], count: int, s: Settings, shift: int) -> Table:
    rows: dict[str, Row] = {}
    with contextlib.ExitStack() as stack:
        live: dict[str, ServerProcess] = {}
        for impl in impls:
            spec = StreamSpec(idle=True, ping=None if impl.name in NO_PING else PING)
            live[impl.name] = stack.enter_context(ServerProcess(impl.name, spec, NAME))
        for name, server in list(live.items()):
            try:
                server.wait_port()
            except RuntimeError as exc:
                rows[name] = Row(name, None, note=f"failed: {exc}")
                del live[name]
        order = rotated(list(live), shift)
        for group in [order] if s.together else [[name] for name in order]:
            # Alone, an implementation that cannot ping only needs a short settle window.
            pinging = any(name not in NO_PING for name in group)
            sessions: list[Session] = []
            try:
                sessions = [Session(live[name], count, s.parallel) for name in group]
                window = _lockstep(sessions, s.window if pinging else SETTLE)
                for session in sessions:
                    name = session.server.impl
                    rows[name] = _row(name, session.sample(window), count)
            except (RuntimeError, OSError, subprocess.SubprocessError, ValueError) as exc:
                for name in group:
                    rows.setdefault(name, Row(name, None, note=f"failed: {exc}"))
            finally:
                for session in sessions:
                    session.kill()
                # Stopped now: the next group gets a machine without thousands of dead streams.
                for name in group:
                    live[name].stop()
    ordered = [rows[impl.name] for impl in impls if impl.name in rows]
    return Table(
        f"{count:,} open streams, pinged every {PING:g} s for {s.window:g} s",
        "KiB RSS per stream",
        ordered,
        ["CPU % of a core", "pings min / median", "open time s", "client CPU %"],
        digits=1,
    )


def run(impls: list[Implementation], quick: bool, env: dict[str, str]) -> Report:
    s = settings(quick)
    chosen = [impl for impl in impls if not impl.object_only]
    tables = [_round(chosen, count, s, shift) for shift, count in enumerate(s.streams)]
    server = f"uvicorn, --http {http_setting()} --loop {loop_setting()}, one process each"
    return Report(NAME, TITLE, DESCRIPTION, quick, tables, environment={**env, "server": server})
