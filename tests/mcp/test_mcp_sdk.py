"""Every use of the MCP SDK (``litestar_sse/mcp/_sdk.py``), checked against the installed SDK,
and ``MCPSessions`` in front of the SDK's real session manager, in process."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.mcpserver import MCPServer
from mcp.server.streamable_http import StreamableHTTPServerTransport
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

from litestar_sse.broadcast import Broadcaster
from litestar_sse.mcp import BroadcastEventStore, MCPSessions
from litestar_sse.mcp import _sdk as sdk
from litestar_sse.mcp._sdk import can_take_over, holds_session

pytestmark = pytest.mark.anyio

VERSION = "2025-11-25"
INITIALIZE = {
    "protocolVersion": VERSION,
    "capabilities": {},
    "clientInfo": {"name": "test", "version": "1"},
}


def test_the_private_names_of_the_sdk_used_to_take_sessions_over_are_there() -> None:
    # If one fails, an SDK release changed what take_over_session relies on: adapt sdk.py.
    server = MCPServer("names")
    server.streamable_http_app()
    manager = server.session_manager
    for name in ("_server_instances", "_task_group", "_lifespan_state", "_session_owners"):
        assert name in vars(manager), name
    assert isinstance(manager._server_instances, dict)
    assert callable(manager._discard_session)
    assert hasattr(manager._session_creation_lock, "__aenter__")
    transport = StreamableHTTPServerTransport(None, idle_timeout=60)
    assert transport._requests_in_flight == 0
    assert transport._idle_timeout == 60
    assert can_take_over(manager)
    for name in sdk.__all__:
        assert getattr(sdk, name) is not None


def served(stateless: bool = False, store: BroadcastEventStore | None = None) -> Any:
    server = MCPServer("in-process")

    @server.tool()
    async def echo(text: str) -> str:
        return text

    server.streamable_http_app(event_store=store, stateless_http=stateless)
    return server.session_manager


@pytest.fixture
async def endpoint() -> AsyncIterator[tuple[MCPSessions, BroadcastEventStore]]:
    async with Broadcaster() as broadcaster:
        store = BroadcastEventStore(broadcaster)
        manager = served(store=store)
        async with manager.run():
            yield MCPSessions(manager, store), store


def client(app: MCPSessions) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://127.0.0.1:8000")


def headers(session_id: str, **extra: str) -> dict[str, str]:
    return {
        "accept": "application/json, text/event-stream",
        "mcp-protocol-version": VERSION,
        "mcp-session-id": session_id,
        **extra,
    }


def messages(body: str) -> list[dict[str, Any]]:
    return [
        json.loads(line[5:])
        for line in body.splitlines()
        if line.startswith("data:") and line[5:].strip()
    ]


async def test_a_session_opened_elsewhere_is_served_without_a_new_handshake(
    endpoint: tuple[MCPSessions, BroadcastEventStore],
) -> None:
    app, store = endpoint
    # what another worker's MCPSessions registered when its client initialized
    elsewhere = store.new_session()
    elsewhere.initialize = INITIALIZE
    await store.register("opened-elsewhere", elsewhere)
    assert app.manager is not None
    assert not holds_session(app.manager, "opened-elsewhere")
    call = {"jsonrpc": "2.0", "id": 5, "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": "hi"}}}  # fmt: skip
    async with client(app) as http:
        response = await http.post("/mcp", json=call, headers=headers("opened-elsewhere"))
    assert response.status_code == 200, response.text
    assert holds_session(app.manager, "opened-elsewhere")
    (answer,) = messages(response.text)
    assert answer["id"] == 5
    assert answer["result"]["content"][0]["text"] == "hi"
    # stored in that session's streams, with ids of that session
    event_ids = [line[3:].strip() for line in response.text.splitlines() if line.startswith("id:")]
    assert event_ids
    assert all(elsewhere.broadcast_id(i) for i in event_ids)


async def test_unknown_sessions_and_ids_are_refused_on_every_worker(
    endpoint: tuple[MCPSessions, BroadcastEventStore],
) -> None:
    app, store = endpoint
    no_params = store.new_session()  # registered without initialize params: never taken over
    await store.register("no-params", no_params)
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    async with client(app) as http:
        unknown = await http.post("/mcp", json=ping, headers=headers("nobody"))
        assert unknown.status_code == 404
        assert unknown.json()["error"]["message"] == "Session not found"
        assert (await http.post("/mcp", json=ping, headers=headers("no-params"))).status_code == 404
        forged = headers("no-params", **{"last-event-id": "0-1.AAAAAAAAAAAAAAAAAAAAAA"})
        forged["accept"] = "text/event-stream"
        assert (await http.get("/mcp", headers=forged)).status_code == 404
        forged["accept"] = "application/json"
        assert (await http.get("/mcp", headers=forged)).status_code == 406
        # the SDK's DNS-rebinding checks hold for the resumptions MCPSessions answers
        forged["accept"] = "text/event-stream"
        rebound = await http.get("/mcp", headers={**forged, "host": "evil.example"})
        assert rebound.status_code == 421
        await store.close_session("no-params")
        assert (await http.post("/mcp", json=ping, headers=headers("no-params"))).status_code == 404


async def test_a_manager_mcp_sessions_cannot_serve_is_refused_at_construction() -> None:
    async with Broadcaster() as broadcaster:
        store = BroadcastEventStore(broadcaster)
        with pytest.raises(ValueError, match="stateless"):
            MCPSessions(served(stateless=True, store=store), store)
        with pytest.raises(ValueError, match="event_store=store"):
            MCPSessions(served(store=BroadcastEventStore(broadcaster)), store)
        manager = served(store=store)
        assert isinstance(manager, StreamableHTTPSessionManager)
        assert MCPSessions(manager.handle_request, store).manager is None
        assert MCPSessions(manager.handle_request, store, manager=manager).manager is manager


def as_user(app: MCPSessions, client_id: str | None) -> httpx.AsyncClient:
    """A client whose requests carry the SDK's authenticated user ``client_id``."""

    async def authenticated(scope: Any, receive: Any, send: Any) -> None:
        if client_id is not None:
            token = AccessToken(token="t", client_id=client_id, scopes=[])
            scope = {**scope, "user": AuthenticatedUser(token)}
        await app(scope, receive, send)

    transport = httpx.ASGITransport(authenticated)
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000")


async def test_a_session_serves_only_the_credential_that_opened_it_on_every_worker(
    endpoint: tuple[MCPSessions, BroadcastEventStore],
) -> None:
    app, store = endpoint
    # opened by alice on another worker: her identity is in the registry
    session = store.new_session()
    session.initialize = INITIALIZE
    session.owner = {"client_id": "alice", "issuer": None, "subject": None}
    await store.register("alices", session)
    priming = await session.store_event("1", None)
    await session.store_event("1", result_message())
    resume = headers("alices", **{"last-event-id": priming})
    resume["accept"] = "text/event-stream"
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    for intruder in ("mallory", None):
        async with as_user(app, intruder) as http:
            assert (await http.get("/mcp", headers=resume)).status_code == 404
            assert (
                await http.post("/mcp", json=ping, headers=headers("alices"))
            ).status_code == 404
            assert (await http.delete("/mcp", headers=headers("alices"))).status_code == 404
    async with as_user(app, "alice") as http:
        answered = await http.get("/mcp", headers=resume)
        assert answered.status_code == 200
        assert [m["result"] for m in messages(answered.text)] == [{}]
        assert (await http.post("/mcp", json=ping, headers=headers("alices"))).status_code == 200
    assert await store.find_session("alices") is not None  # no intruder closed it


def result_message() -> Any:
    from mcp.types import jsonrpc_message_adapter

    return jsonrpc_message_adapter.validate_python({"jsonrpc": "2.0", "id": 1, "result": {}})


def test_a_manager_of_an_unknown_shape_is_used_without_takeovers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # An SDK release whose manager lacks what take_over_session uses: warned at start,
    # never touched (sessions opened elsewhere then get the SDK's own 404).
    store = BroadcastEventStore(Broadcaster())
    other_shape = SimpleNamespace(stateless=False, event_store=store, handle_request=None)
    with caplog.at_level(logging.WARNING, logger="litestar_sse.mcp"):
        sessions = MCPSessions(served(store=store).handle_request, store, manager=other_shape)  # type: ignore[arg-type]
    assert sessions.manager is None
    assert "route each Mcp-Session-Id to one worker" in caplog.text
    assert not can_take_over(other_shape)
