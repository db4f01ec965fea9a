"""``BroadcastEventStore``: the MCP SDK's ``EventStore`` on a Broadcaster, on both backends."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import BackendFactory
from mcp.server.streamable_http import EventMessage, EventStore
from mcp.types import JSONRPCMessage, jsonrpc_message_adapter

from litestar_sse.broadcast import BacklogEnd, Broadcaster, BroadcastMessage, InvalidTopicError
from litestar_sse.mcp import BroadcastEventStore

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


def dumped(message: JSONRPCMessage) -> dict[str, Any]:
    return message.model_dump(exclude_unset=True)


async def test_replay_sends_what_was_stored_after_the_id_in_order(
    make_backend: BackendFactory,
) -> None:
    async with Broadcaster(make_backend()) as broadcaster:
        store = BroadcastEventStore(broadcaster)
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
        sent = Sent()  # after the last one: the stream is known, nothing to send
        assert await store.replay_events_after(ids[-1], sent) == "7"
        assert sent.events == []


async def test_unknown_ids_replay_nothing(make_backend: BackendFactory) -> None:
    async with Broadcaster(make_backend()) as broadcaster:
        store = BroadcastEventStore(broadcaster)
        known = await store.store_event("1", progress(1))
        epoch, _, position = known.partition("-")
        foreign_epoch = "".join("1" if c == "0" else "0" for c in epoch)
        sent = Sent()
        for unknown in ("", "nonsense", f"{foreign_epoch}-{position}", f"{epoch}-9{position}"):
            assert await store.replay_events_after(unknown, sent) is None
        other_prefix = BroadcastEventStore(broadcaster, prefix="elsewhere:")
        assert await other_prefix.replay_events_after(known, sent) is None
        not_a_store_topic = await broadcaster.publish("chat", "hello")
        assert await store.replay_events_after(not_a_store_topic, sent) is None
        assert sent.events == []


async def test_the_ids_of_two_streams_are_never_mixed(make_backend: BackendFactory) -> None:
    async with Broadcaster(make_backend()) as broadcaster:
        store = BroadcastEventStore(broadcaster)
        firsts = {stream: await store.store_event(stream, None) for stream in ("1", "2")}
        stored: dict[str, list[str]] = {"1": [], "2": []}
        for step in range(1, 4):  # interleaved, as two requests of one session run
            for stream in ("2", "1"):
                event_id = await store.store_event(stream, progress(step, token=stream))
                stored[stream].append(event_id)
        for stream in ("1", "2"):
            sent = Sent()
            assert await store.replay_events_after(firsts[stream], sent) == stream
            assert [event_id for event_id, _ in sent.pairs()] == stored[stream]
            assert {m["params"]["progressToken"] for _, m in sent.pairs()} == {stream}


async def test_a_session_view_replays_its_own_streams_only(make_backend: BackendFactory) -> None:
    async with Broadcaster(make_backend()) as broadcaster:
        store = BroadcastEventStore(broadcaster)
        alice, bob = store.for_session("alice"), store.for_session("bob")
        # both sessions number their requests from 0: same stream id, separate topics
        from_alice = await alice.store_event("0", progress(1, "alice"))
        await alice.store_event("0", result(0, "alice"))
        from_bob = await bob.store_event("0", progress(1, "bob"))
        await bob.store_event("0", result(0, "bob"))
        assert alice.topic("0") != bob.topic("0")
        sent = Sent()
        assert await bob.replay_events_after(from_alice, sent) is None  # a guessed id
        assert await store.replay_events_after(from_alice, sent) is None
        assert sent.events == []
        assert await alice.replay_events_after(from_alice, sent) == "0"
        assert [m["result"]["content"][0]["text"] for _, m in sent.pairs()] == ["alice"]
        assert await bob.replay_events_after(from_bob, Sent()) == "0"


async def test_any_stream_id_round_trips(make_backend: BackendFactory) -> None:
    async with Broadcaster(make_backend()) as broadcaster:
        store = BroadcastEventStore(broadcaster).for_session("s/1 %")
        for stream in ("_GET_stream", '"a/b"', "é\n\x00", "%2F"):
            first = await store.store_event(stream, None)
            await store.store_event(stream, progress(1))
            sent = Sent()
            assert await store.replay_events_after(first, sent) == stream
            assert len(sent.events) == 1


async def test_subscribe_follows_a_request_stream_until_its_response(
    make_backend: BackendFactory,
) -> None:
    async with Broadcaster(make_backend()) as broadcaster:
        store = BroadcastEventStore(broadcaster).for_session("s")
        first = await store.store_event("3", progress(1))
        live = await store.subscribe("3", last_event_id=first)
        ids = [await store.store_event("3", m) for m in (progress(2), result(3))]
        await store.store_event("3", progress(99))  # after the response: not part of it
        items = [item async for item in live]
        assert [getattr(item, "id", None) for item in items] == [None, *ids]
        assert isinstance(items[0], BacklogEnd)
        assert isinstance(items[-1], BroadcastMessage)
        assert '"result"' in items[-1].data


async def test_bad_input_is_refused_with_a_clear_error(make_backend: BackendFactory) -> None:
    async with Broadcaster(make_backend()) as broadcaster:
        store = BroadcastEventStore(broadcaster)
        with pytest.raises(InvalidTopicError, match="256 bytes"):
            await store.store_event("x" * 300, progress(1))
        with pytest.raises(TypeError, match="stream_id"):
            await store.store_event(7, progress(1))  # type: ignore[arg-type]
        with pytest.raises(InvalidTopicError):
            BroadcastEventStore(broadcaster, prefix="bad\nprefix")
        with pytest.raises(ValueError, match="page_size"):
            BroadcastEventStore(broadcaster, page_size=0)
        with pytest.raises(ValueError, match="session_id"):
            store.for_session("")
        assert await store.replay_events_after(42, Sent()) is None  # type: ignore[arg-type]
