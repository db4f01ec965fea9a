"""One module per implementation, each exposing ``build(spec, variant) -> ASGIApp``.

Modules are imported lazily: a peer that fails to import (or litestar_sse while it is being
written) is reported as unavailable instead of taking the whole run down.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Awaitable, Callable, MutableMapping
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

    def build(self, spec: StreamSpec) -> ASGIApp:
        if self.object_only and spec.payload is not Payload.OBJECT:
            raise Unsupported("object payload only")
        module = importlib.import_module(f"benchmarks.apps.{self.module}")
        app: ASGIApp = module.build(spec, self.variant)
        return app

    def unavailable_reason(self) -> str | None:
        """None when the implementation can be imported, else why not."""
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
    Implementation("sse_starlette", "sse_starlette_app"),
    Implementation("fastapi", "fastapi_app"),
)

# Said in every report: the ping-capable Litestar (main, 3.0 beta) is not on PyPI.
LEFT_OUT = (
    "Litestar main's `ServerSentEvent(ping_interval=...)` is not released on PyPI, so it is "
    "not measured; `litestar` below is Litestar 2.25, which has no keep-alive pings."
)


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
