"""Creates ``benchmarks/.venv-peers``, the one environment where every implementation runs.

The project venv must not hold the peers (sse-starlette, FastAPI, matplotlib), and all
implementations must share one interpreter and one set of dependencies to be comparable. The
venv is rebuilt only when ``requirements-peers.txt`` (or the interpreter) changes: a hash of
both is stored inside it. litestar_sse is not installed there: the repository root goes on
PYTHONPATH, so the working tree is what gets measured, with no build step.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV = BENCH / ".venv-peers"
REQUIREMENTS = BENCH / "requirements-peers.txt"
STAMP = VENV / ".requirements-sha256"
PYTHON = VENV / "bin" / "python"
INSTALL_TIMEOUT = 900.0


# Bump when the way the venv is built changes, to rebuild existing ones.
LAYOUT = b"2: compiled bytecode"


def _fingerprint() -> str:
    digest = hashlib.sha256(REQUIREMENTS.read_bytes())
    digest.update(sys.version.encode())
    digest.update(LAYOUT)
    return digest.hexdigest()


def _uv() -> str:
    # The Makefile installs uv into .tools/ before any target runs; a bare ``python -m
    # benchmarks.run`` on a machine without it falls back to a uv on PATH.
    local = ROOT / ".tools" / "bin" / "uv"
    if local.exists():
        return str(local)
    found = shutil.which("uv")
    if found is None:
        raise SystemExit("uv not found: run `make bench` (it installs .tools/bin/uv) first")
    return found


def is_current() -> bool:
    return PYTHON.exists() and STAMP.exists() and STAMP.read_text().strip() == _fingerprint()


def ensure() -> Path:
    """Return the peers' python, creating or refreshing the venv when needed."""
    if is_current():
        return PYTHON
    uv = _uv()
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    # The project venv's own interpreter (resolved by uv to its base install) so that the
    # peers run on the same Python version as the project.
    print(f"[bench] creating {VENV.relative_to(ROOT)} from {REQUIREMENTS.name} ...", flush=True)
    steps = [
        [uv, "venv", "--quiet", "--clear", "--python", sys.executable, str(VENV)],
        # Compiled now, once: every server process would otherwise compile FastAPI, pydantic
        # and Litestar again at start-up, seconds each on a busy 2-core machine.
        [
            uv,
            "pip",
            "install",
            "--quiet",
            "--compile-bytecode",
            "--python",
            str(PYTHON),
            "-r",
            str(REQUIREMENTS),
        ],
    ]
    for step in steps:
        subprocess.run(step, check=True, env=env, cwd=ROOT, timeout=INSTALL_TIMEOUT)
    STAMP.write_text(_fingerprint() + "\n")
    return PYTHON


def inside() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


def child_env() -> dict[str, str]:
    """Environment of every process started in the peers venv."""
    path = os.environ.get("PYTHONPATH")
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT) + (os.pathsep + path if path else ""),
        # Output of crashed children must not sit lost in a buffer.
        "PYTHONUNBUFFERED": "1",
        "VIRTUAL_ENV": str(VENV),
    }
