"""The built wheel carries ``py.typed`` (a user's mypy checks calls against our types) and
the Redis backend's Lua scripts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent

# A user's file, wrong on purpose: ``retry`` is an int of milliseconds, ``id`` no float.
USER_CODE = """\
from litestar_sse import ServerSentEventMessage
from litestar_sse.codec import encode_event

encode_event("hello", retry="soon")
message: ServerSentEventMessage = ServerSentEventMessage(data="x")
reveal_type(message.retry)
"""


def _uv() -> str:
    found = ROOT / ".tools" / "bin" / "uv"
    if found.exists():
        return str(found)
    which = shutil.which("uv")
    if which is None:
        pytest.skip("uv is not installed")
    return which


def test_a_users_mypy_sees_the_types_of_the_installed_wheel(tmp_path: Path) -> None:
    uv = _uv()
    env = {**os.environ, "UV_OFFLINE": "1", "UV_NO_CONFIG": "1"}
    env.pop("VIRTUAL_ENV", None)
    run = {"capture_output": True, "text": True, "timeout": 120, "env": env}

    built = subprocess.run(
        [uv, "build", "--wheel", "-o", str(tmp_path / "dist"), str(ROOT)], **run, check=False
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("litestar_sse-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "litestar_sse/py.typed" in names
    # The Redis backend's Lua scripts are package data, read when the module is imported.
    lua = {Path(name).name for name in names if name.endswith(".lua")}
    shipped = ROOT / "litestar_sse" / "broadcast" / "_backends" / "redis"
    assert lua == {path.name for path in shipped.glob("*.lua")}
    assert "publish.lua" in lua

    # A fresh venv with the wheel alone (no dependencies: mypy does not report what it cannot
    # find inside an installed package, and leaving Litestar out keeps this to seconds).
    venv = tmp_path / "venv"
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], **run, check=True)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    installed = subprocess.run(
        [uv, "pip", "install", "-q", "--python", str(python), "--no-deps", str(wheel)],
        **run,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr

    user = tmp_path / "app" / "user.py"
    user.parent.mkdir()
    user.write_text(USER_CODE, encoding="utf-8")
    # The project's mypy, told to resolve imports in the fresh venv (PEP 561), from a
    # directory where neither the source tree nor its configuration is found.
    checked = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--python-executable",
            str(python),
            "--no-incremental",
            "--config-file",
            os.devnull,
            "user.py",
        ],
        cwd=user.parent,
        **run,
        check=False,
    )
    out = checked.stdout
    assert "py.typed" not in out, out  # "missing library stubs or py.typed marker"
    assert 'Argument "retry" to "encode_event" has incompatible type "str"' in out, out
    assert 'Revealed type is "int | None"' in out, out  # not Any: ServerSentEventMessage is typed
