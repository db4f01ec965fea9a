"""Scenario 7: one publish reaching every open stream of several workers through one Redis."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.metadata
import json
import math
import re
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from benchmarks.apps import FLOOR, OURS, Implementation
from benchmarks.peers_env import ROOT, child_env
from benchmarks.processes import LOGS, cpu_seconds, read_line, rss_kib, stop_process
from benchmarks.report import Report, Row, Table
from benchmarks.scale_apps import PING
from benchmarks.server import http_setting, loop_setting

NAME = "scale"
TITLE = "Scenario 7: scale (one publish, many streams, several workers, one Redis)"
CHANNELS = "litestar channels"
REDIS_SERVER = "redis-server"
HEADROOM = 500  # descriptors each process keeps for itself (Redis, logs, the listener)
PER_PROCESS_CAP = 19_500  # streams per worker, whatever the limit (a bounded run)
IDLE_WINDOW = PING + 2.5  # long enough for every stream to be pinged once
SETTLE = 2.0  # the idle window of an implementation without pings (channels)
START_TIMEOUT = 60.0
DESCRIPTION = f"""
W uvicorn worker processes (one port each, as a load balancer in front of `uvicorn --workers
W` spreads connections; per-process CPU and RSS are read from /proc of each) on one
redis-server the benchmark starts on a free loopback port (no persistence). Streams: as many
per worker as the per-process open-file limit allows, less {HEADROOM} descriptors of headroom
(at most {PER_PROCESS_CAP:,}), opened by load-generator processes (each at most as many as
the limit allows): asyncio protocols on raw sockets, no HTTP library, a minimal parse of the
`data:` lines, so they cost far less than the servers; their own CPU is shown. Once every
stream got its response head, the workers' RSS is read, then the streams stay idle for
{IDLE_WINDOW:g} s (pings: each stream must get one, at litestar_sse's default
{PING:g} s interval), then a publisher process publishes events at a steady rate, each
event's data carrying its sequence number and its publish time (`time.time_ns()`, same
machine). Per event: the time until the last stream parsed it (p50 / p99 / max over the
events), and publish to arrival over all deliveries; every stream must get every event.
Server CPU per delivery = the workers' utime+stime from the first publish until the last
delivery arrived (pings and the Redis readers included), over the deliveries. RSS per stream
= (the workers' VmRSS once all streams are open - before) / streams.

`raw` is a hand-written ASGI app: each worker reads the Redis stream in one `XREAD BLOCK`
loop and writes every event to all its connections from that loop, with no task, queue or
future per stream; it pings on litestar_sse's rule (a write after 15 s of silence) from one
task. `litestar_sse` is `SSEPlugin` with `Broadcaster(RedisStreamBackend(...))`, all defaults.
`litestar channels` is Litestar 2.25's `ChannelsPlugin` on `RedisChannelsStreamBackend`
(Redis Streams with history, the closest to ours; its reader polls `XREAD` with a 1 ms block
by default) feeding Litestar's `ServerSentEvent`, which cannot ping.
"""


@dataclasses.dataclass(frozen=True)
class Settings:
    workers: int
    per_worker: int
    events: int
    rate: float
    # After the last publish, how long the streams may take to get every event.
    drain: float
    parallel: int


def settings(quick: bool, limit: int) -> Settings:
    allowed = max(1, min(limit - HEADROOM, PER_PROCESS_CAP))
    if quick:
        return Settings(2, min(4_000, allowed), 8, 1.0, 20.0, 256)
    return Settings(5, allowed, 20, 1.0, 60.0, 256)


def file_limit() -> tuple[int, int, int]:
    """(soft, hard) open-file limit found, and the soft limit after raising it to the hard."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    raised = soft
    if hard != resource.RLIM_INFINITY and hard > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        raised = hard
    return soft, hard, raised


class Child:
    """A child process of the peers venv answering lines on stdout; always stopped."""

    def __init__(self, argv: list[str], log_name: str) -> None:
        self.name = " ".join(argv[:3])
        LOGS.mkdir(parents=True, exist_ok=True)
        with (LOGS / log_name).open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", *argv],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env=child_env(),
                cwd=ROOT,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def expect(self, word: str, timeout: float) -> object:
        line = read_line(self.proc, timeout)
        if line.split(" ", 1)[0] != word:
            raise RuntimeError(f"expected {word!r} from {self.name}, got {line[:200]!r}")
        rest = line[len(word) :].strip()
        return json.loads(rest) if rest else None

    def tell(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{line}\n".encode())
        self.proc.stdin.flush()

    def stop(self) -> None:
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        stop_process(self.proc)


@contextlib.contextmanager
def redis_server() -> Iterator[tuple[str, int]]:
    """A redis-server on a free loopback port, without persistence: (url, pid)."""
    LOGS.mkdir(parents=True, exist_ok=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    args = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    args += ["--appendonly", "no", "--protected-mode", "no", "--dir", str(LOGS)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {port}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(64).startswith(b"+PONG"):
                        break
            except OSError:
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0", proc.pid
    finally:
        stop_process(proc)


@dataclasses.dataclass
class Sample:
    streams: int
    failed: dict[str, int]  # streams that did not open, by reason
    open_seconds: float
    rss_per_stream_kib: float
    idle_cpu_percent: float
    pings_per_stream: dict[int, int]
    pings_expected: int
    ping_late_ms: dict[int, int]
    events: int
    complete: bool
    received: int
    missing_events: int
    last_ms: list[float]  # per event: publish to its last delivery
    latency_ms: dict[int, int]  # all deliveries
    disorder: int
    lost: int
    malformed: int
    log_notes: list[str]  # what the workers' logs say went wrong
    server_cpu_s: float
    client_cpu_s: float
    redis_cpu_s: float
    window_s: float
    machine_busy_percent: float  # of all cores, everything on the machine


def _merge(into: dict[int, int], more: object) -> None:
    assert isinstance(more, dict)
    for key, count in more.items():
        into[int(key)] = into.get(int(key), 0) + int(count)


def hist_percentile(hist: dict[int, int], p: float) -> float:
    """Nearest-rank percentile of a histogram {value: count}."""
    total = sum(hist.values())
    if not total:
        return math.nan
    rank = max(1, math.ceil(p / 100 * total))
    seen = 0
    for value in sorted(hist):
        seen += hist[value]
        if seen >= rank:
            return float(value)
    return float(max(hist))


def percentile(values: list[float], p: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) CPU time of the whole machine so far, in clock ticks (/proc/stat)."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    total = sum(fields[:8])  # up to steal; guest time is already in user
    return total - idle, total


_ERROR_LINE = re.compile(r"^[\s|]*([\w.]+(?:Error|Exception)): ", re.MULTILINE)


def log_findings(logs: list[Path]) -> list[str]:
    """What went wrong in the workers, from their logs: how many workers ended on an
    exception (the last one each logged), and how many times Redis was reported unavailable
    (litestar_sse's outage warnings)."""
    endings: dict[str, int] = {}
    outages = 0
    for log in logs:
        try:
            text = log.read_text(errors="replace")
        except OSError:
            continue
        outages += text.count(" is unavailable (")
        errors = _ERROR_LINE.findall(text)
        if errors:
            endings[errors[-1]] = endings.get(errors[-1], 0) + 1
    found = [
        f"{count} of {len(logs)} workers logged {error} (see results/tmp)"
        for error, count in sorted(endings.items())
    ]
    if outages:
        found.append(f"{outages} 'Redis unavailable' warnings in the worker logs")
    return found


def _workers_cpu(workers: list[Child]) -> float:
    return sum(cpu_seconds(w.pid) for w in workers)


def measure(
    impl: str,
    s: Settings,
    url: str,
    redis_pid: int,
    limit: int,
    on_publish: Callable[[list[int]], object] | None = None,
) -> Sample:
    """One implementation at the scale of ``s``; ``on_publish`` is given the workers' pids
    as the first event is published (``benchmarks.scale_profile`` starts a profiler there)."""
    slug = "".join(c if c.isalnum() else "_" for c in impl)
    prefix = f"scale-{slug}-{time.time_ns()}:"
    per_client = max(1, limit - HEADROOM)
    total = s.workers * s.per_worker
    clients_count = math.ceil(total / per_client)
    with contextlib.ExitStack() as stack:
        workers: list[Child] = []
        for index in range(s.workers):
            argv = ["benchmarks.scale_server", "--impl", impl, "--url", url, "--prefix", prefix]
            worker = Child(argv, f"scale_server_{slug}_{index}.log")
            stack.callback(worker.stop)
            workers.append(worker)
        ports = []
        for worker in workers:
            line = read_line(worker.proc, START_TIMEOUT)
            if not line.startswith("PORT "):
                raise RuntimeError(f"a worker of {impl} did not start; see {LOGS}")
            ports.append(line.split()[1])
        clients: list[Child] = []
        shares = [s.per_worker // clients_count] * clients_count
        for index in range(s.per_worker % clients_count):
            shares[index] += 1
        for index, share in enumerate(shares):
            argv = ["benchmarks.scale_client", "--ports", ",".join(ports)]
            argv += ["--per-port", str(share), "--parallel", str(s.parallel), "--ping", str(PING)]
            client = Child(argv, f"scale_client_{slug}_{index}.log")
            stack.callback(client.stop)
            clients.append(client)
        for client in clients:
            client.expect("WARM", START_TIMEOUT + 30)
        rss_before = sum(rss_kib(w.pid) for w in workers)
        for client in clients:
            client.tell("GO")
        open_timeout = 180.0 + total / 50
        ready = [client.expect("READY", open_timeout) for client in clients]
        opened = sum(int(r["opened"]) for r in ready if isinstance(r, dict))
        reasons: dict[str, int] = {}
        for answer in ready:
            assert isinstance(answer, dict)
            for reason, count in answer["failed"].items():
                reasons[reason] = reasons.get(reason, 0) + int(count)
        open_seconds = max(float(r["seconds"]) for r in ready if isinstance(r, dict))
        rss_open = sum(rss_kib(w.pid) for w in workers)

        pinging = impl != CHANNELS
        idle = IDLE_WINDOW if pinging else SETTLE
        for client in clients:
            client.tell("IDLE")
        for client in clients:
            client.expect("IDLING", 30)
        cpu0, t0 = _workers_cpu(workers), time.monotonic()
        time.sleep(idle)
        idle_cpu = (_workers_cpu(workers) - cpu0) / (time.monotonic() - t0) * 100
        pings_per_stream: dict[int, int] = {}
        ping_late: dict[int, int] = {}
        for client in clients:
            client.tell("PINGS")
        for client in clients:
            answer = client.expect("PINGS", 60)
            assert isinstance(answer, dict)
            _merge(pings_per_stream, answer["per_stream"])
            _merge(ping_late, answer["late_ms"])

        timeout = s.events / s.rate + s.drain
        marks = (
            _workers_cpu(workers),
            sum(cpu_seconds(c.pid) for c in clients),
            cpu_seconds(redis_pid),
            time.monotonic(),
            *machine_jiffies(),
        )
        argv = ["benchmarks.scale_publisher", "--impl", impl, "--url", url, "--prefix", prefix]
        argv += ["--events", str(s.events), "--rate", str(s.rate)]
        publisher = Child(argv, f"scale_publisher_{slug}.log")
        stack.callback(publisher.stop)
        if on_publish is not None:
            on_publish([worker.pid for worker in workers])
        for client in clients:
            client.tell(f"EXPECT {s.events} {timeout}")
        done = [client.expect("DONE", timeout + 60) for client in clients]
        ends = (
            _workers_cpu(workers),
            sum(cpu_seconds(c.pid) for c in clients),
            cpu_seconds(redis_pid),
            time.monotonic(),
            *machine_jiffies(),
        )
        publisher.expect("DONE", 30)
    # The workers are stopped: their logs are complete.
    worker_logs = [LOGS / f"scale_server_{slug}_{index}.log" for index in range(s.workers)]

    deliveries: dict[int, int] = {}
    latency: dict[int, int] = {}
    last: dict[int, int] = {}
    published: dict[int, int] = {}
    for answer in done:
        assert isinstance(answer, dict)
        _merge(deliveries, answer["deliveries"])
        _merge(latency, answer["latency_ms"])
        for key, value in answer["last_arrival"].items():
            last[int(key)] = max(last.get(int(key), 0), int(value))
        published.update({int(k): int(v) for k, v in answer["published"].items()})
    received = sum(count for seq, count in deliveries.items() if 0 <= seq < s.events)
    complete_events = [seq for seq in range(s.events) if deliveries.get(seq, 0) >= opened]
    return Sample(
        streams=opened,
        failed=reasons,
        open_seconds=open_seconds,
        rss_per_stream_kib=(rss_open - rss_before) / max(1, opened),
        idle_cpu_percent=idle_cpu,
        pings_per_stream=pings_per_stream,
        pings_expected=int(idle // PING) if pinging else 0,
        ping_late_ms=ping_late,
        events=s.events,
        complete=len(complete_events) == s.events,
        received=received,
        missing_events=s.events - len(complete_events),
        last_ms=[(last[seq] - published[seq]) / 1e6 for seq in complete_events],
        latency_ms=latency,
        disorder=sum(int(a["disorder"]) for a in done if isinstance(a, dict)),
        lost=sum(int(a["lost"]) for a in done if isinstance(a, dict)),
        log_notes=log_findings(worker_logs),
        malformed=sum(int(a["malformed"]) for a in done if isinstance(a, dict)),
        server_cpu_s=ends[0] - marks[0],
        client_cpu_s=ends[1] - marks[1],
        redis_cpu_s=ends[2] - marks[2],
        window_s=ends[3] - marks[3],
        machine_busy_percent=(ends[4] - marks[4]) / max(1, ends[5] - marks[5]) * 100,
    )


def _redis_versions() -> str:
    try:
        line = subprocess.run(
            [REDIS_SERVER, "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
        server = next((w[2:] for w in line.split() if w.startswith("v=")), "unknown version")
    except (OSError, subprocess.SubprocessError):
        server = "unknown version"
    try:
        client = importlib.metadata.version("redis")
    except importlib.metadata.PackageNotFoundError:
        client = "not installed"
    return f"one redis-server {server}, redis-py {client}"


def _pings_cell(sample: Sample) -> str:
    if not sample.pings_expected:
        return "n/a"
    counts = sample.pings_per_stream
    streams = sum(counts.values())
    low = min(counts, default=0)
    short = sum(n for pings, n in counts.items() if pings < sample.pings_expected)
    median = hist_percentile(counts, 50)
    return f"{low} / {median:g} (of {sample.pings_expected}); {short:,} short of {streams:,}"


def sample_rows(name: str, sample: Sample) -> tuple[Row, Row, Row]:
    notes = []
    expected = sample.streams * sample.events
    if sample.failed:
        reasons = ", ".join(f"{why}: {n:,}" for why, n in sorted(sample.failed.items()))
        notes.append(f"{sum(sample.failed.values()):,} streams failed to open ({reasons})")
    if expected > sample.received:
        notes.append(f"{expected - sample.received:,} deliveries missing")
    if sample.missing_events:
        notes.append(f"{sample.missing_events} events did not reach every stream in time")
    if sample.disorder:
        notes.append(f"{sample.disorder} out of order")
    if sample.lost:
        notes.append(f"{sample.lost} streams closed")
    if sample.malformed:
        notes.append(f"{sample.malformed} malformed data lines")
    notes += sample.log_notes
    if name == CHANNELS:
        notes.append("Litestar 2.25: no pings")
    note = "; ".join(notes)
    p99_last = percentile(sample.last_ms, 99) if sample.last_ms else None
    latency = Row(
        name,
        p99_last,
        extra={
            "p50 ms": f"{percentile(sample.last_ms, 50):,.0f}" if sample.last_ms else "n/a",
            "max ms": f"{max(sample.last_ms):,.0f}" if sample.last_ms else "n/a",
            "all deliveries p50 / p99 / max ms": " / ".join(
                f"{hist_percentile(sample.latency_ms, p):,.0f}" for p in (50, 99, 100)
            ),
            "deliveries": f"{sample.received:,} of {expected:,}",
        },
        note=note,
    )
    per_delivery = 1e6 / max(1, sample.received)
    cpu = Row(
        name,
        sample.server_cpu_s * per_delivery,
        extra={
            "generator µs per delivery": f"{sample.client_cpu_s * per_delivery:.2f}",
            "Redis CPU ms": f"{sample.redis_cpu_s * 1000:,.0f}",
            "window s": f"{sample.window_s:.1f}",
            "idle CPU % (workers)": f"{sample.idle_cpu_percent:.1f}",
            "machine busy %": f"{sample.machine_busy_percent:.0f}",
        },
        note=note,
    )
    late = sample.ping_late_ms
    memory = Row(
        name,
        sample.rss_per_stream_kib,
        extra={
            "streams": f"{sample.streams:,}",
            "pings min / median": _pings_cell(sample),
            "ping late p99 / max ms": (
                f"{hist_percentile(late, 99):,.0f} / {max(late):,.0f}" if late else "n/a"
            ),
            "open time s": f"{sample.open_seconds:.1f}",
        },
        note="Litestar 2.25: no pings" if name == CHANNELS else "",
    )
    return latency, cpu, memory


def run(impls: list[Implementation], quick: bool, env: dict[str, str]) -> Report:
    names = {impl.name for impl in impls}
    chosen = [FLOOR]
    chosen += [OURS] if OURS in names else []
    chosen += [CHANNELS] if "litestar" in names else []
    soft, hard, limit = file_limit()
    s = settings(quick, limit)
    total = s.workers * s.per_worker
    clients = math.ceil(total / max(1, limit - HEADROOM))
    rows: dict[str, tuple[Row, Row, Row]] = {}
    with redis_server() as (url, redis_pid):
        for name in chosen:
            print(f"[bench] scale: {name}, {total:,} streams ...", flush=True)
            try:
                rows[name] = sample_rows(name, measure(name, s, url, redis_pid, limit))
            except (RuntimeError, OSError, subprocess.SubprocessError, ValueError) as exc:
                failed = Row(name, None, note=f"failed: {exc}")
                rows[name] = (failed, failed, failed)
    shape = f"{total:,} streams on {s.workers} workers, {s.events} events at {s.rate:g}/s"
    tables = [
        Table(
            f"Publish to the last stream, per event: {shape}",
            "p99 ms",
            [rows[name][0] for name in chosen],
            ["p50 ms", "max ms", "all deliveries p50 / p99 / max ms", "deliveries"],
            digits=0,
        ),
        Table(
            f"Server CPU per delivery: {shape}",
            "µs per delivery",
            [rows[name][1] for name in chosen],
            [
                "generator µs per delivery",
                "Redis CPU ms",
                "window s",
                "idle CPU % (workers)",
                "machine busy %",
            ],
            digits=2,
        ),
        Table(
            f"Server memory and pings: {total:,} open streams, idle for {IDLE_WINDOW:g} s",
            "KiB RSS per stream",
            [rows[name][2] for name in chosen],
            ["streams", "pings min / median", "ping late p99 / max ms", "open time s"],
            digits=1,
        ),
    ]
    limits = (
        f"{soft:,} soft / {hard:,} hard per process, raised to {limit:,}: {s.per_worker:,} "
        f"streams per worker, {clients} load-generator process(es)"
    )
    server = (
        f"uvicorn, --http {http_setting()} --loop {loop_setting()}, {s.workers} worker "
        f"processes (one port each); {_redis_versions()}"
    )
    notes = [
        f"Pings: litestar_sse's default interval ({PING:g} s without a write); during the "
        f"publishing window (an event every {1 / s.rate:g} s) no ping is due, so the ping "
        f"column comes from the idle window before it. A ping is late by its arrival minus the "
        f"arrival of the stream's previous write minus {PING:g} s.",
        "Generator: the load-generator processes' utime+stime over the publishing window, per "
        "delivery; the machine's cores are shared by the workers, Redis, the publisher and it. "
        "Machine busy: all the machine's cores over the publishing window (/proc/stat, "
        "everything running, kernel network work included), in % of all cores; what the "
        "workers, generator and Redis columns do not account for ran beside the benchmark. "
        "Idle CPU: the workers over the idle window, in % of one core.",
    ]
    environment = {**env, "server": server, "open-file limit": limits}
    return Report(NAME, TITLE, DESCRIPTION, quick, tables, notes, environment)
