"""``.ci/system-deps``: what `make test` and .ci/run need from the system, or one line saying how.

Run as a non-root user (``SYSTEM_DEPS_UID``) with a ``PATH`` of our own, so nothing is
installed or uninstalled: only the "missing" answer is exercised, with stand-ins for the tools
that are present.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / ".ci" / "system-deps"
TOOLS = ("make", "redis-server", "node", "npm", "ip")


def run(
    tmp_path: Path, present: tuple[str, ...], *, chromium: bool = True
) -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in present:
        (bin_dir / tool).symlink_to("/bin/true")
    browser = tmp_path / "chromium"
    if chromium:
        browser.symlink_to("/bin/true")
    env = {
        "PATH": str(bin_dir),
        "SYSTEM_DEPS_UID": "1000",
        "SYSTEM_DEPS_CHROMIUM": str(browser),
        "PYTHON": sys.executable,  # a venv's python: has ensurepip
    }
    return subprocess.run(
        ["/bin/bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=30, check=False
    )


def test_nothing_missing_says_nothing(tmp_path: Path) -> None:
    done = run(tmp_path, TOOLS)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


@pytest.mark.parametrize(
    ("absent", "chromium", "packages"),
    [
        (("redis-server",), True, "redis-server"),
        (("node", "npm"), True, "nodejs npm"),
        ((), False, "chromium"),
        (("redis-server", "ip"), False, "redis-server chromium iproute2"),
    ],
)
def test_missing_packages_stop_with_one_line_naming_the_fix(
    tmp_path: Path, absent: tuple[str, ...], chromium: bool, packages: str
) -> None:
    present = tuple(tool for tool in TOOLS if tool not in absent)
    done = run(tmp_path, present, chromium=chromium)
    assert done.returncode == 1
    assert done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert f"The tests need {packages} (missing)" in line
    assert line.endswith(
        "sudo apt-get update && sudo apt-get install -y --no-install-recommends " + packages
    )


def test_as_root_it_installs_what_is_missing_and_stops_the_redis_service(tmp_path: Path) -> None:
    # Stand-ins for apt-get and systemctl record their arguments: nothing is installed.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    for tool in ("apt-get", "systemctl"):
        stand_in = bin_dir / tool
        stand_in.write_text(f'#!/bin/bash\necho "{tool} $*" >> {calls}\n')
        stand_in.chmod(0o755)
    for tool in ("make", "node", "npm", "ip"):
        (bin_dir / tool).symlink_to("/bin/true")
    env = {
        "PATH": str(bin_dir),
        "SYSTEM_DEPS_UID": "0",
        "SYSTEM_DEPS_CHROMIUM": str(tmp_path / "no-chromium"),
        "PYTHON": sys.executable,
    }
    done = subprocess.run(
        ["/bin/bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    assert calls.read_text().splitlines() == [
        "apt-get update -q",
        "apt-get install -y -q --no-install-recommends redis-server chromium",
        "systemctl stop redis-server",
        "systemctl disable redis-server",
    ]


def test_make_test_and_ci_run_both_use_it() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^test: system-deps\b", makefile, re.MULTILINE)
    assert ".ci/system-deps" in makefile
    ci_run = (ROOT / ".ci" / "run").read_text()
    assert ".ci/system-deps" in ci_run
    assert "apt-get" not in ci_run  # one place installs packages
    assert os.access(SCRIPT, os.X_OK)
