"""One module per implementation, each exposing ``build(spec, variant) -> ASGIApp``.

Modules are imported lazily: a peer that fails to import (or litestar_sse while it is being
written) is reported as unavailable instead of taking the whole run down.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from benchmarks.workload import Payload, StreamSpec

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

FLOOR = "raw"
OURS = "litestar_sse"
PATH = "/stream"


class Unsupported(Exception):
    """The implementation has no way to serve this spec (e.g. no keep-alive pings)."""


@dataclasses.dataclass(frozen=True)
class Implementation:
    name: str
    module: str
    # Passed to ``build``: selects e.g. which model class litestar_sse is handed.
    variant: str = ""
    # Only run for object payloads (the extra model-class rows of litestar_sse).
    object_only: bool = False
    # Which python runs it: "" for the peers venv's, "litestar3" for the Litestar 3 venv's
    # (see peers_env). In-process scenarios measure such an implementation in a process of
    # its own (``benchmarks.inprocess_child``).
    interpreter: str = ""

    def build(self, spec: StreamSpec) -> ASGIApp:
        if self.object_only and spec.payload is not Payload.OBJECT:
            raise Unsupported("object payload only")
        module = importlib.import_module(f"benchmarks.apps.{self.module}")
        app: ASGIApp = module.build(spec, self.variant)
        return app

    def unavailable_reason(self) -> str | None:
        """None when the implementation can be imported, else why not."""
        if self.interpreter:
            return _unavailable_elsewhere(self)
        try:
            module = importlib.import_module(f"benchmarks.apps.{self.module}")
            check: Callable[[], None] = module.check
            check()
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
        return None


IMPLEMENTATIONS: tuple[Implementation, ...] = (
    Implementation(FLOOR, "raw_asgi"),
    Implementation(OURS, "litestar_sse_app", "struct"),
    Implementation("litestar_sse (dataclass)", "litestar_sse_app", "dataclass", True),
    Implementation("litestar_sse (pydantic)", "litestar_sse_app", "pydantic", True),
    Implementation("litestar", "litestar_app"),
    Implementation("litestar 3.0b0", "litestar_app", "3", interpreter="litestar3"),
    Implementation("sse_starlette", "sse_starlette_app"),
    Implementation("fastapi", "fastapi_app"),
)

# Said in every report.
LEFT_OUT = (
    "`litestar` is Litestar 2.25, which has no keep-alive pings; `litestar 3.0b0` is Litestar's "
    "main branch (3.0.0b0, not on PyPI: installed from the wheel in shared/wheels), run from a "
    "venv of its own; in the in-process scenarios it is measured in a process of its own, "
    "right after the others, against the floor measured in that process too (see its note)."
)


def _unavailable_elsewhere(impl: Implementation) -> str | None:
    import subprocess

    from benchmarks import peers_env

    python = peers_env.python_for(impl.interpreter)
    if not Path(python).exists():
        return f"no {impl.interpreter} venv (wheel {peers_env.LITESTAR3_WHEEL} not found)"
    probe = f"import benchmarks.apps.{impl.module} as m; m.check()"
    try:
        subprocess.run(
            [python, "-c", probe],
            check=True,
            capture_output=True,
            env=peers_env.child_env(),
            cwd=peers_env.ROOT,
            timeout=60,
        )
    except subprocess.CalledProcessError as exc:
        return exc.stderr.decode(errors="replace").strip().splitlines()[-1]
    except subprocess.TimeoutExpired:
        return "import check timed out"
    return None


def by_name(name: str) -> Implementation:
    for impl in IMPLEMENTATIONS:
        if impl.name == name:
            return impl
    raise KeyError(name)


def available(names: list[str] | None = None) -> tuple[list[Implementation], dict[str, str]]:
    """The implementations that import, and the reasons of those that do not."""
    ok: list[Implementation] = []
    missing: dict[str, str] = {}
    for impl in IMPLEMENTATIONS:
        if names and impl.name not in names and impl.name.split(" ")[0] not in names:
            continue
        reason = impl.unavailable_reason()
        if reason is None:
            ok.append(impl)
        else:
            missing[impl.name] = reason
    return ok, missing
