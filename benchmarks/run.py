"""Entry point of ``make bench`` / ``make bench-quick``.

Started by the project venv's python, it makes sure ``benchmarks/.venv-peers`` exists and then
runs itself again inside that venv, where every implementation can be imported side by side.
"""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
import time
from types import ModuleType

from benchmarks import peers_env

# Run in this order (the priorities); each writes results/<name>.md and .png.
SCENARIOS = (
    "data_path",
    "sync_iterator",
    "end_to_end",
    "idle_streams",
    "fanout",
    "client",
    "scale",
    "redis_publish",
    "redis_capacity",
)
# A full run takes about half an hour; this only stops a hung run.
RUN_TIMEOUT = 3600.0


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short run (< 1 minute)")
    parser.add_argument(
        "--scenario", action="append", choices=SCENARIOS, help="run only these (repeatable)"
    )
    parser.add_argument(
        "--impl",
        action="append",
        help="run only these implementations (repeatable; raw is always kept as the floor)",
    )
    return parser.parse_args(argv)


def _scenario(name: str) -> ModuleType:
    return importlib.import_module(f"benchmarks.scenario_{name}")


def _inside(args: argparse.Namespace) -> int:
    from benchmarks import report
    from benchmarks.apps import FLOOR, available

    wanted = [*args.impl, FLOOR] if args.impl else None
    impls, missing = available(wanted)
    for name, reason in missing.items():
        print(f"[bench] {name} is not measured: {reason}", flush=True)
    env = report.environment({})
    if missing:
        env["not measured"] = "; ".join(f"{name} ({why})" for name, why in missing.items())
    started = time.monotonic()
    for name in [s for s in SCENARIOS if not args.scenario or s in args.scenario]:
        t0 = time.monotonic()
        print(f"[bench] scenario {name} ({'quick' if args.quick else 'full'}) ...", flush=True)
        module = _scenario(name)
        report.publish(module.run(impls, args.quick, env))
        print(f"[bench] {name} took {time.monotonic() - t0:.1f} s", flush=True)
    print(f"[bench] done in {time.monotonic() - started:.1f} s; see benchmarks/results/")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parse(argv)
    if peers_env.inside():
        return _inside(args)
    python = peers_env.ensure()
    completed = subprocess.run(
        [str(python), "-m", "benchmarks.run", *argv],
        env=peers_env.child_env(),
        cwd=peers_env.ROOT,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    return completed.returncode


if __name__ == "__main__":
    sys.exit(main())
