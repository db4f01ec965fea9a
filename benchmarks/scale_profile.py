"""Where a worker of the scale scenario spends its time: ``python -m benchmarks.scale_profile``.

Runs one implementation of the scale scenario (``benchmarks.scenario_scale``) at a chosen
size and, as the first event is published, samples its first worker with py-spy for a while
(``py-spy record --format raw``; with ``--native``, C frames too, such as the garbage
collector's). Prints the run's figures and the frames that were on top of the stack most
often. py-spy is not a dependency of the project: install it where you run this
(``.venv/bin/pip install py-spy``), or pass ``--py-spy``. Run it from ``benchmarks/.venv-peers``
with the repository on ``PYTHONPATH``, as ``make bench`` runs the scenarios::

    PYTHONPATH=. benchmarks/.venv-peers/bin/python -m benchmarks.scale_profile \\
        --impl litestar_sse --per-worker 8000 --events 20 --out /tmp/ours.txt
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
from pathlib import Path

from benchmarks.peers_env import ROOT
from benchmarks.scale_apps import IMPLS
from benchmarks.scenario_scale import Settings, file_limit, measure, redis_server, sample_rows

_FRAME = re.compile(r"(.*?) \((.*?):\d+\)")


def _short(frame: str) -> str:
    match = _FRAME.match(frame)
    if not match:
        return frame
    function, path = match.groups()
    return f"{function} ({'/'.join(path.split('/')[-2:])})"


def top_frames(path: Path, count: int) -> list[tuple[float, str]]:
    """The ``count`` functions most often on top of the stack, with their share of samples."""
    on_top: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        if not stack or not samples.isdigit():
            continue
        total += int(samples)
        on_top[_short(stack.split(";")[-1])] += int(samples)
    return [(100 * n / max(1, total), frame) for frame, n in on_top.most_common(count)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--impl", required=True, choices=IMPLS)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--per-worker", type=int, default=8000)
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=15, help="how long py-spy samples")
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument("--native", action="store_true", help="C frames too (slower)")
    parser.add_argument("--out", type=Path, required=True, help="py-spy's raw output")
    parser.add_argument("--py-spy", default=None, help="the py-spy executable")
    args = parser.parse_args(argv)
    py_spy = args.py_spy or shutil.which("py-spy") or str(ROOT / ".venv" / "bin" / "py-spy")
    spies: list[subprocess.Popen[bytes]] = []

    def start(pids: list[int]) -> None:
        command = [py_spy, "record", "--pid", str(pids[0]), "--format", "raw"]
        command += ["-d", str(args.seconds), "-r", str(args.rate), "-o", str(args.out)]
        command.append("--native" if args.native else "--nonblocking")
        spies.append(subprocess.Popen(command, stdout=subprocess.DEVNULL))

    s = Settings(args.workers, args.per_worker, args.events, 1.0, 30.0, 256)
    _, _, limit = file_limit()
    try:
        with redis_server() as (url, redis_pid):
            sample = measure(args.impl, s, url, redis_pid, limit, on_publish=start)
    finally:
        for spy in spies:
            try:
                spy.wait(timeout=args.seconds + 60)
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait(timeout=5)
    latency, cpu, memory = sample_rows(args.impl, sample)
    for row, metric in ((latency, "p99 ms to the last stream"), (cpu, "server µs per delivery")):
        print(f"{metric}: {row.value}, {row.extra} {row.note}")
    print(f"KiB RSS per stream: {memory.value}")
    for share, frame in top_frames(args.out, 20):
        print(f"{share:5.1f}%  {frame}")


if __name__ == "__main__":
    main()
