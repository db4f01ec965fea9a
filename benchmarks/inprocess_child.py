"""Measure one implementation in process, in another python (Litestar 3 beside 2.25).

Litestar 3 cannot be imported beside Litestar 2.25, so the in-process scenarios measure it (and
the raw floor again, for its ratio) in a process started with the Litestar 3 venv's python. The
parent passes the spec and the budget as JSON arguments; the child prints the two rows as JSON
on its last line of output.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess

from benchmarks.apps import FLOOR, Implementation, by_name
from benchmarks.child import run_loop
from benchmarks.inprocess import Budget, measure_here
from benchmarks.peers_env import ROOT, child_env, python_for
from benchmarks.report import Row
from benchmarks.workload import StreamSpec

# A full data-path table takes about a minute per implementation on a busy 2-core machine.
CHILD_TIMEOUT = 900.0


def run_in_child(impl: Implementation, spec: StreamSpec, budget: Budget) -> tuple[Row | None, Row]:
    """The floor's row and ``impl``'s row, measured side by side in ``impl``'s python."""
    completed = subprocess.run(
        [
            python_for(impl.interpreter),
            "-m",
            "benchmarks.inprocess_child",
            "--impl",
            impl.name,
            "--spec",
            spec.to_cli(),
            "--budget",
            json.dumps(dataclasses.asdict(budget)),
        ],
        capture_output=True,
        env=child_env(),
        cwd=ROOT,
        timeout=CHILD_TIMEOUT,
        check=False,
    )
    lines = completed.stdout.decode().strip().splitlines()
    if completed.returncode != 0 or not lines:
        raise RuntimeError(completed.stderr.decode(errors="replace").strip()[-300:])
    rows = {row["impl"]: Row(**row) for row in json.loads(lines[-1])}
    return rows.get(FLOOR), rows[impl.name]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--impl", required=True)
    parser.add_argument("--spec", required=True)
    parser.add_argument("--budget", required=True)
    args = parser.parse_args()
    impl = dataclasses.replace(by_name(args.impl), interpreter="")
    spec = StreamSpec.from_cli(args.spec)
    budget = Budget(**json.loads(args.budget))
    table = run_loop(measure_here([by_name(FLOOR), impl], spec, budget, ""))
    print(json.dumps([dataclasses.asdict(row) for row in table.rows]))


if __name__ == "__main__":
    main()
