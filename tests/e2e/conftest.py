"""A real uvicorn serving ``tests/e2e/apps.py``, shared by the end-to-end tests of a module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.live_server import Server, live_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with live_server("tests.e2e.apps:app", tmp_path_factory.mktemp("uvicorn")) as server:
        yield server
