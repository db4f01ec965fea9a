"""The default client key of ``max_connections_per_client``: one IPv6 host is its /64, and a
server that reports no address is said so (issue: a per-client limit silently off)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar import Litestar, get
from litestar.enums import ScopeType
from litestar.testing import TestClient
from litestar.types import ASGIApp, Receive, Scope, Send

from litestar_sse import ServerSentEvent, SSEConfig, SSEPlugin
from litestar_sse._plugin.config import client_address
from litestar_sse.testing import sse_stream


async def quiet() -> AsyncIterator[str]:
    yield "open"
    await asyncio.sleep(3600)


@get("/quiet", sync_to_thread=False)
def stream() -> ServerSentEvent:
    return ServerSentEvent(quiet())


def peer_from_header(app: ASGIApp) -> ASGIApp:
    """What a server reports as the client: the test's ``x-peer`` header (``none``: nothing)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            peer = dict(scope["headers"]).get(b"x-peer")
            if peer is not None:
                scope["client"] = None if peer == b"none" else (peer.decode(), 50000)
        await app(scope, receive, send)

    return middleware


def make_app(per_client: int) -> Litestar:
    config = SSEConfig(ping_interval=None, max_connections_per_client=per_client)
    return Litestar([stream], plugins=[SSEPlugin(config)], middleware=[peer_from_header])


class Kept(logging.Handler):
    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class Request:
    def __init__(self, client: Any) -> None:
        self.scope = {"client": client}


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:0:0:9", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("::ffff:198.51.100.4", "198.51.100.4"),
        ("fe80::1%eth0", "fe80::/64"),
        ("testclient", "testclient"),
    ],
)
def test_the_default_key_of_a_client(host: str, key: str) -> None:
    assert client_address(Request((host, 1))) == key  # type: ignore[arg-type]


def test_no_address_is_no_key() -> None:
    assert client_address(Request(None)) is None  # type: ignore[arg-type]


def test_the_addresses_of_one_ipv6_network_share_one_allowance() -> None:
    # 50 addresses of one /64 got 2 streams each; they are one client now.
    app = make_app(per_client=2)
    with TestClient(app) as client:
        peers = [f"2001:db8:7:7::{index:x}" for index in range(1, 4)]
        with (
            sse_stream(client, "GET", "/quiet", headers={"x-peer": peers[0]}) as first,
            sse_stream(client, "GET", "/quiet", headers={"x-peer": peers[1]}) as second,
        ):
            assert (first.status_code, second.status_code) == (200, 200)
            with sse_stream(client, "GET", "/quiet", headers={"x-peer": peers[2]}) as third:
                assert third.status_code == 503
            other = {"x-peer": "2001:db8:7:8::1"}  # another /64: another client
            with sse_stream(client, "GET", "/quiet", headers=other) as elsewhere:
                assert elsewhere.status_code == 200


def test_a_server_that_reports_no_address_is_told_once() -> None:
    # A handler of its own: Litestar's logging config replaces the root logger's (caplog's).
    handler = Kept(logging.WARNING)
    records = handler.records
    logger = logging.getLogger("litestar_sse")
    logger.addHandler(handler)
    try:
        app = make_app(per_client=1)
        with (
            TestClient(app) as client,
            sse_stream(client, "GET", "/quiet", headers={"x-peer": "none"}) as first,
            sse_stream(client, "GET", "/quiet", headers={"x-peer": "none"}) as second,
        ):
            assert (first.status_code, second.status_code) == (200, 200)  # not counted
    finally:
        logger.removeHandler(handler)
    told = [r for r in records if "client_key found no client" in r.getMessage()]
    assert len(told) == 1
    assert "SSEConfig(client_key=...)" in told[0].getMessage()
    assert "/quiet" in told[0].getMessage()
