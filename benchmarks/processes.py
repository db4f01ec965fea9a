"""Starting, watching and stopping the server subprocesses (and reading /proc about them)."""

from __future__ import annotations

import os
import resource
import select
import subprocess
import time
from pathlib import Path
from types import TracebackType

from benchmarks.peers_env import ROOT, child_env, python_for
from benchmarks.workload import StreamSpec

LOGS = Path(__file__).resolve().parent / "results" / "tmp"
START_TIMEOUT = 30.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a whole process (all threads), from /proc/PID/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name may contain spaces: fields are counted after its closing ')'.
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_kib(pid: int | str = "self") -> int:
    """VmRSS of a process (this one by default), from /proc/PID/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS in /proc/{pid}/status")


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """Terminate ``proc`` if it still runs, and kill it after 5 s."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def read_line(proc: subprocess.Popen[bytes], timeout: float) -> str:
    """The next line a child prints, or "" if it printed none in time or exited."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            return proc.stdout.readline().decode().strip()
        if proc.poll() is not None:
            break
    return ""


class ServerProcess:
    """``python -m benchmarks.server`` for one implementation; a context manager that always
    stops it. stderr goes to results/tmp/ (git-ignored) for post-mortems."""

    def __init__(self, impl: str, spec: StreamSpec, tag: str) -> None:
        self.impl = impl
        self.spec = spec
        self.tag = tag
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def log_stem(self) -> str:
        """File-name-safe ``<tag>_<impl>``: logs are overwritten by the next run, not piled up."""
        return "".join(c if c.isalnum() else "_" for c in f"{self.tag}_{self.impl}")

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def start(self) -> ServerProcess:
        LOGS.mkdir(parents=True, exist_ok=True)
        log = (LOGS / f"server_{self.log_stem}.log").open("wb")
        from benchmarks.apps import by_name

        self._proc = subprocess.Popen(
            [
                python_for(by_name(self.impl).interpreter),
                "-m",
                "benchmarks.server",
                "--impl",
                self.impl,
                "--spec",
                self.spec.to_cli(),
            ],
            stdout=subprocess.PIPE,
            stderr=log,
            env=child_env(),
            cwd=ROOT,
        )
        log.close()
        return self

    def wait_port(self) -> int:
        """Block until the server printed its port (it is listening from then on)."""
        assert self._proc is not None
        line = read_line(self._proc, START_TIMEOUT)
        if not line.startswith("PORT "):
            raise RuntimeError(f"server for {self.impl} did not start; see {LOGS}")
        self.port = int(line.split()[1])
        return self.port

    def rss_kib(self) -> int:
        return rss_kib(self.pid)

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def terminate(self) -> None:
        """Ask it to exit without waiting (stopping several servers then overlaps)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()

    def stop(self) -> None:
        if self._proc is not None:
            stop_process(self._proc)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def raise_fd_limit() -> int:
    """Thousands of open streams need thousands of descriptors: lift the soft limit to the
    hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft
