"""Creates ``benchmarks/.venv-peers``, the one environment where every implementation runs.

The project venv must not hold the peers (sse-starlette, FastAPI, matplotlib), and all
implementations must share one interpreter and one set of dependencies to be comparable. The
venv is rebuilt only when ``requirements-peers.txt`` (or the interpreter) changes: a hash of
both is stored inside it. litestar_sse is not installed there: the repository root goes on
PYTHONPATH, so the working tree is what gets measured, with no build step.

Litestar 3 cannot share a venv with Litestar 2.25, so its own ``ServerSentEvent`` runs from a
second one, ``benchmarks/.venv-peers-litestar3``: the same requirements, with Litestar replaced
by the wheel of its main branch (``LITESTAR3_WHEEL``, by default the one in ``../shared/wheels``;
Litestar 3 is not on PyPI yet). Its rows come from processes started with that venv's python.
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

VENV_LITESTAR3 = BENCH / ".venv-peers-litestar3"
PYTHON_LITESTAR3 = VENV_LITESTAR3 / "bin" / "python"
STAMP_LITESTAR3 = VENV_LITESTAR3 / ".requirements-sha256"
LITESTAR3_WHEEL = Path(
    os.environ.get(
        "LITESTAR3_WHEEL", ROOT.parent / "shared" / "wheels" / "litestar-3.0.0b0-py3-none-any.whl"
    )
)


# Bump when the way the venv is built changes, to rebuild existing ones.
LAYOUT = b"2: compiled bytecode"


def _fingerprint(*extra: Path) -> str:
    digest = hashlib.sha256(REQUIREMENTS.read_bytes())
    digest.update(sys.version.encode())
    digest.update(LAYOUT)
    for path in extra:
        digest.update(path.read_bytes())
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


def _create(venv: Path, python: Path, stamp: Path, fingerprint: str, *extra: str) -> None:
    uv = _uv()
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    # The project venv's own interpreter (resolved by uv to its base install) so that the
    # peers run on the same Python version as the project.
    print(f"[bench] creating {venv.relative_to(ROOT)} from {REQUIREMENTS.name} ...", flush=True)
    # Compiled now, once: every server process would otherwise compile FastAPI, pydantic and
    # Litestar again at start-up, seconds each on a busy 2-core machine.
    install = [uv, "pip", "install", "--quiet", "--compile-bytecode", "--python", str(python)]
    steps = [
        [uv, "venv", "--quiet", "--clear", "--python", sys.executable, str(venv)],
        [*install, "-r", str(REQUIREMENTS)],
    ]
    if extra:
        steps.append([*install, *extra])
    for step in steps:
        subprocess.run(step, check=True, env=env, cwd=ROOT, timeout=INSTALL_TIMEOUT)
    stamp.write_text(fingerprint + "\n")


def ensure() -> Path:
    """Return the peers' python, creating or refreshing the venvs when needed."""
    if not is_current():
        _create(VENV, PYTHON, STAMP, _fingerprint())
    if LITESTAR3_WHEEL.exists():
        fingerprint = _fingerprint(LITESTAR3_WHEEL)
        current = STAMP_LITESTAR3.exists() and STAMP_LITESTAR3.read_text().strip()
        if not PYTHON_LITESTAR3.exists() or current != fingerprint:
            _create(
                VENV_LITESTAR3, PYTHON_LITESTAR3, STAMP_LITESTAR3, fingerprint, str(LITESTAR3_WHEEL)
            )
    return PYTHON


def python_for(interpreter: str) -> str:
    """The python that runs an implementation: this one, or the Litestar 3 venv's."""
    if interpreter == "litestar3":
        return str(PYTHON_LITESTAR3)
    return sys.executable


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
