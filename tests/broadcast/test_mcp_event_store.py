"""``BroadcastEventStore``: the MCP SDK's ``EventStore`` on a Broadcaster, on both backends:
each session's streams apart, ids that open one session's streams only, a registry every
worker reads."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from conftest import BackendFactory, until
from mcp.server.streamable_http import EventMessage, EventStore
from mcp.types import JSONRPCMessage, jsonrpc_message_adapter

from litestar_sse.broadcast import Broadcaster, BroadcastMessage
from litestar_sse.broadcast.errors import InvalidTopicError
from litestar_sse.mcp import BroadcastEventStore, SessionEventStore
from litestar_sse.mcp._current import current_session

pytestmark = pytest.mark.anyio


def progress(step: int, token: str = "job") -> JSONRPCMessage:
    return jsonrpc_message_adapter.validate_python(
        {
            "jsonrpc": "2.0",
            "method": "notifications/progress",
            "params": {"progressToken": token, "progress": step, "total": 3},
        }
    )


def result(request_id: int, text: str = "done") -> JSONRPCMessage:
    return jsonrpc_message_adapter.validate_python(
        {
            "jsonrpc": "2.0",
            "id": request_id,
            "result": {"content": [{"type": "text", "text": text}]},
        }
    )


class Sent:
    def __init__(self) -> None:
        self.events: list[EventMessage] = []

    async def __call__(self, event: EventMessage) -> None:
        self.events.append(event)

    def pairs(self) -> list[tuple[str | None, dict[str, Any]]]:
        return [(e.event_id, e.message.model_dump(exclude_unset=True)) for e in self.events]

    def texts(self) -> list[str]:
        return [m["result"]["content"][0]["text"] for _, m in self.pairs() if "result" in m]


def dumped(message: JSONRPCMessage) -> dict[str, Any]:
    return message.model_dump(exclude_unset=True)


async def test_replay_sends_what_was_stored_after_the_id_in_order(
    make_backend: BackendFactory,
) -> None:
    async with Broadcaster(make_backend()) as broadcaster:
        store = await BroadcastEventStore(broadcaster).open_session("s1")
        assert isinstance(store, EventStore)
        priming = await store.store_event("7", None)
        messages = [progress(1), progress(2), progress(3), result(7)]
        ids = [await store.store_event("7", message) for message in messages]
        sent = Sent()
        assert await store.replay_events_after(priming, sent) == "7"
        assert sent.pairs() == [(i, dumped(m)) for i, m in zip(ids, messages, strict=True)]
        sent = Sent()
        assert await store.replay_events_after(ids[1], sent) == "7"
        assert [event_id for event_id, _ in sent.pairs()] == ids[2:]


async def test_replay_follows_the_stream_live_until_its_response(
    make_backend: BackendFactory,
) -> None:
    # What lets a client resume on any worker: what the request stores meanwhile, wherever
    # it runs, arrives through the broadcaster.
    async with Broadcaster(make_backend()) as broadcaster:
        store = await BroadcastEventStore(broadcaster).open_session("s1")
        first = await store.store_event("1", progress(1))
        sent = Sent()
        replay = asyncio.ensure_future(store.replay_events_after(first, sent))
        later = [await store.store_event("1", m) for m in (progress(2), result(1))]
        assert await asyncio.wait_for(replay, 10) == "1"
        assert [event_id for event_id, _ in sent.pairs()] == later


async def test_ids_not_handed_out_by_the_session_replay_nothing(
    make_backend: BackendFactory,
) -> None:
    async with Broadcaster(make_backend()) as broadcaster:
        root = BroadcastEventStore(broadcaster)
        store = await root.open_session("s1")
        known = await store.store_event("1", progress(1))
        await store.store_event("1", result(1))
        broadcast_id, _, tag = known.rpartition(".")
        forged_tag = ("A" if tag[0] != "A" else "B") + tag[1:]
        neighbour = broadcast_id[:-1] + str((int(broadcast_id[-1]) + 1) % 10)
        sent = Sent()
        for unknown in (
            "",
            "nonsense",
            broadcast_id,  # the bare broadcast id: no tag
            f"{broadcast_id}.{forged_tag}",
            f"{neighbour}.{tag}",  # a neighbour, with a tag of the session
            known + "x",
            "é" + known,
            known * 10,
        ):
            assert await store.replay_events_after(unknown, sent) is None, unknown
            assert await store.resume(unknown) is None
        elsewhere = await BroadcastEventStore(broadcaster, prefix="elsewhere:").open_session("s1")
        assert await elsewhere.replay_events_after(known, sent) is None
        assert sent.events == []
        assert await store.replay_events_after(42, Sent()) is None  # type: ignore[arg-type]


async def test_two_sessions_with_the_same_request_ids_share_nothing(
    make_backend: BackendFactory,
) -> None:
    async with Broadcaster(make_backend()) as broadcaster:
        root = BroadcastEventStore(broadcaster)
        alice, bob = await root.open_session("alice"), await root.open_session("bob")
        # both sessions number their requests from 0: the same stream id, separate topics
        bob_priming = await bob.store_event("0", None)
        from_alice = await alice.store_event("0", progress(1, "alice"))
        await alice.store_event("0", result(0, "alice"))
        from_bob = await bob.store_event("0", progress(1, "bob"))
        await bob.store_event("0", result(0, "bob"))
        assert alice.topic("0") != bob.topic("0")
        assert alice.stream_of(bob.topic("0")) is None
        sent = Sent()
        assert await bob.replay_events_after(from_alice, sent) is None  # another's id
        assert sent.events == []
        assert await bob.replay_events_after(bob_priming, sent) == "0"
        assert sent.texts() == ["bob"]
        sent = Sent()
        assert await alice.replay_events_after(from_alice, sent) == "0"
        assert sent.texts() == ["alice"]
        assert await bob.replay_events_after(from_bob, Sent()) == "0"


async def test_the_registry_is_read_by_every_worker(make_backend: BackendFactory) -> None:
    backend = make_backend()
    async with Broadcaster(backend) as broadcaster:
        here = BroadcastEventStore(broadcaster)
        session = here.new_session()
        assert await here.find_session("s1") is None  # not registered yet
        await here.register("s1", session)
        priming = await session.store_event("2", None)
        await session.store_event("2", result(2, "mine"))
        # another store on the same broadcaster, as another worker's would be
        there = await BroadcastEventStore(broadcaster).find_session("s1")
        assert there is not None
        assert there.topic("2") == session.topic("2")
        sent = Sent()
        assert await there.replay_events_after(priming, sent) == "2"
        assert sent.texts() == ["mine"]
        await here.close_session("s1")
        assert await here.find_session("s1") is None
        for bad in ("", "x" * 129, "a b", "é", None, 7):
            assert await here.find_session(bad) is None


async def test_the_sdks_calls_go_to_the_current_requests_session(
    make_backend: BackendFactory,
) -> None:
    async with Broadcaster(make_backend()) as broadcaster:
        root = BroadcastEventStore(broadcaster)
        with pytest.raises(RuntimeError, match="MCPSessions"):
            await root.store_event("1", progress(1))
        with pytest.raises(RuntimeError, match="MCPSessions"):
            await root.replay_events_after("x", Sent())
        alice, bob = await root.open_session("alice"), await root.open_session("bob")
        token = current_session.set(alice)
        try:
            first = await root.store_event("1", None)
            await root.store_event("1", result(1, "alice"))
        finally:
            current_session.reset(token)
        token = current_session.set(bob)
        try:
            assert await root.replay_events_after(first, Sent()) is None
        finally:
            current_session.reset(token)
        foreign = await BroadcastEventStore(broadcaster, prefix="other:").open_session("x")
        token = current_session.set(foreign)  # a session of another store: refused
        try:
            with pytest.raises(RuntimeError):
                await root.store_event("1", progress(1))
        finally:
            current_session.reset(token)
        sent = Sent()
        assert await alice.replay_events_after(first, sent) == "1"
        assert sent.texts() == ["alice"]


async def test_any_stream_id_round_trips(make_backend: BackendFactory) -> None:
    async with Broadcaster(make_backend()) as broadcaster:
        store = await BroadcastEventStore(broadcaster).open_session("s/1%")
        for stream in ('"a/b"', "é\n\x00", "%2F", "_GET_streams"):
            first = await store.store_event(stream, None)
            await store.store_event(stream, result(1))
            sent = Sent()
            assert await store.replay_events_after(first, sent) == stream
            assert len(sent.events) == 1


async def test_the_standalone_get_stream_is_followed_until_the_client_goes(
    make_backend: BackendFactory,
) -> None:
    # It has no response to end it: the SDK's transport cancels the replay when the client
    # disconnects.
    async with Broadcaster(make_backend()) as broadcaster:
        store = await BroadcastEventStore(broadcaster).open_session("s")
        first = await store.store_event("_GET_stream", None)
        sent = Sent()
        replay = asyncio.ensure_future(store.replay_events_after(first, sent))
        await store.store_event("_GET_stream", progress(1))
        await store.store_event("_GET_stream", result(1))  # not a request's response here
        await until(lambda: len(sent.events) == 2, timeout=10)
        assert not replay.done()
        replay.cancel()
        with pytest.raises(asyncio.CancelledError):
            await replay


async def test_subscribe_follows_a_request_stream_until_its_response(
    make_backend: BackendFactory,
) -> None:
    async with Broadcaster(make_backend()) as broadcaster:
        store = await BroadcastEventStore(broadcaster).open_session("s")
        first = await store.store_event("3", progress(1))
        live = await store.subscribe("3", last_event_id=first)
        ids = [await store.store_event("3", m) for m in (progress(2), result(3))]
        await store.store_event("3", progress(99))  # after the response: not part of it
        items = [item async for item in live]
        assert [item.id for item in items] == ids  # MCP event ids
        assert all(isinstance(item, BroadcastMessage) for item in items)
        assert '"result"' in items[-1].data
        with pytest.raises(ValueError, match="not an event id of this session"):
            await store.subscribe("3", last_event_id=first.rpartition(".")[0])


async def test_bad_input_is_refused_with_a_clear_error(make_backend: BackendFactory) -> None:
    async with Broadcaster(make_backend()) as broadcaster:
        root = BroadcastEventStore(broadcaster)
        store = await root.open_session("s")
        with pytest.raises(InvalidTopicError, match="256 bytes"):
            await store.store_event("x" * 300, progress(1))
        with pytest.raises(TypeError, match="stream_id"):
            await store.store_event(7, progress(1))  # type: ignore[arg-type]
        with pytest.raises(InvalidTopicError):
            BroadcastEventStore(broadcaster, prefix="bad\nprefix")
        with pytest.raises(ValueError, match="page_size"):
            BroadcastEventStore(broadcaster, page_size=0)
        for bad in ("", "x" * 129, "a b"):
            with pytest.raises(ValueError, match="session_id"):
                await root.open_session(bad)
        other = BroadcastEventStore(broadcaster, prefix="other:").new_session()
        with pytest.raises(ValueError, match="not a session of this store"):
            await root.register("s2", other)
        assert isinstance(store, SessionEventStore)
