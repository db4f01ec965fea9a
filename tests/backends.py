"""The core tests on both event loops Litestar runs on: asyncio and trio.

A test module that assigns ``anyio_backend = on_each_backend(__name__)`` runs every test twice:
its ``@pytest.mark.anyio`` tests on each backend (an ``AsyncTestClient`` of Litestar 3 runs
the app on the test's own loop), and its ``TestClient(app)`` calls with ``backend=`` set to it
(the module's ``TestClient`` name is patched for the test).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

__all__ = ("BACKENDS", "on_each_backend")

BACKENDS = ("asyncio", "trio")

CLOSE_TIMEOUT = 10.0
"""Seconds a test client's portal gets to stop before the test fails instead of hanging."""


def _close_within(stack: contextlib.ExitStack, timeout: float) -> None:
    """Close a test client's exit stack, failing the test if its portal does not stop in
    ``timeout`` seconds (seen once: a trio portal's stop never answered, and pytest-timeout
    cannot interrupt the blocked main thread)."""
    errors: list[BaseException] = []

    def close() -> None:
        try:
            stack.close()
        except Exception as exc:  # a client already closed, or closing with an error
            errors.append(exc)

    closer = threading.Thread(target=close, name="close-test-client", daemon=True)
    closer.start()
    closer.join(timeout)
    if closer.is_alive():
        pytest.fail(f"a test client's portal did not stop within {timeout} s")


def on_each_backend(module: str) -> Callable[..., Iterator[str]]:
    """An autouse ``anyio_backend`` fixture for ``module``, parametrized over :data:`BACKENDS`."""

    @pytest.fixture(autouse=True, params=BACKENDS)
    def anyio_backend(
        request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
    ) -> Iterator[str]:
        backend: str = request.param
        created: list[Any] = []

        def make(*args: Any, **kwargs: Any) -> Any:
            client = TestClient(*args, backend=backend, **kwargs)
            created.append(client)
            return client

        monkeypatch.setattr(f"{module}.TestClient", make, raising=False)
        yield backend
        # Litestar 3's TestClient starts its portal when built, and only its __exit__ stops it:
        # a client never entered would leave a trio run behind, which blocks when collected.
        for client in created:
            stack = getattr(client, "exit_stack", None)
            if stack is not None:
                _close_within(stack, CLOSE_TIMEOUT)

    return anyio_backend
