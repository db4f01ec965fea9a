"""The core tests on both event loops Litestar runs on: asyncio and trio.

A test module that assigns ``anyio_backend = on_each_backend(__name__)`` runs every test twice:
its ``@pytest.mark.anyio`` tests on each backend (an ``AsyncTestClient`` of Litestar 3 runs
the app on the test's own loop), and its ``TestClient(app)`` calls with ``backend=`` set to it
(the module's ``TestClient`` name is patched for the test).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import pytest
from litestar.testing import TestClient

__all__ = ("BACKENDS", "on_each_backend")

BACKENDS = ("asyncio", "trio")


def on_each_backend(module: str) -> Callable[..., str]:
    """An autouse ``anyio_backend`` fixture for ``module``, parametrized over :data:`BACKENDS`."""

    @pytest.fixture(autouse=True, params=BACKENDS)
    def anyio_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
        backend: str = request.param
        patched = functools.partial(TestClient, backend=backend)
        monkeypatch.setattr(f"{module}.TestClient", patched, raising=False)
        return backend

    return anyio_backend
