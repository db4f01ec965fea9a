"""Idempotency keys belong to their topic, a reused key with another event is an error, and
many keys cannot make the in-memory backend forget one before its window ends."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import BackendFactory, EventReader
from litestar import Litestar, Request, post
from litestar.params import FromPath
from litestar.testing import AsyncTestClient

from litestar_sse.broadcast import Broadcaster, MemoryBackend
from litestar_sse.broadcast._backends.memory.backend import MAX_IDEMPOTENCY_KEYS
from litestar_sse.broadcast.errors import IdempotencyKeyReusedError, TooManyIdempotencyKeysError

pytestmark = pytest.mark.anyio


async def test_a_key_used_on_one_topic_does_not_swallow_a_publish_to_another(
    make_backend: BackendFactory,
) -> None:
    # It did: bob's publish with the key alice used returned alice's id and stored nothing.
    async with Broadcaster(make_backend()) as broadcaster:
        bob = EventReader(await broadcaster.open_subscription("user:bob"))
        alice_id = await broadcaster.publish("user:alice", "for alice", idempotency_key="k-1")
        bob_id = await broadcaster.publish("user:bob", "for bob", idempotency_key="k-1")
        assert bob_id != alice_id
        [event] = await bob.take(1)
        assert (event.id, event.data) == (bob_id, "for bob")
        # each topic's key still makes its own retry safe
        assert await broadcaster.publish("user:bob", "for bob", idempotency_key="k-1") == bob_id
        assert (
            await broadcaster.publish("user:alice", "for alice", idempotency_key="k-1") == alice_id
        )
        await bob.nothing_for(0.2)
        bob.subscription.close()


@pytest.mark.parametrize(
    ("data", "event"),
    [("other data", None), ("same", "other-type"), ("same", "")],
    ids=["data", "event-type", "empty-event-type"],
)
async def test_a_key_reused_with_another_event_is_refused(
    make_backend: BackendFactory, data: str, event: str | None
) -> None:
    # It returned the first id with no error: the second event was silently dropped.
    async with Broadcaster(make_backend()) as broadcaster:
        reader = EventReader(await broadcaster.open_subscription("t"))
        first = await broadcaster.publish("t", "same", idempotency_key="k")
        with pytest.raises(IdempotencyKeyReusedError) as refused:
            await broadcaster.publish("t", data, event=event, idempotency_key="k")
        assert refused.value.status_code == 409
        assert await broadcaster.publish("t", "same", idempotency_key="k") == first
        [got] = await reader.take(1)
        assert (got.id, got.data) == (first, "same")
        await reader.nothing_for(0.2)
        reader.subscription.close()


async def test_a_reused_key_answers_409_naming_nothing_of_the_events(
    make_backend: BackendFactory,
) -> None:
    broadcaster = Broadcaster(make_backend())

    @post("/publish/{topic:str}")
    async def publish(request: Request[Any, Any, Any], topic: FromPath[str]) -> dict[str, str]:
        data = (await request.body()).decode()
        key = request.headers.get("idempotency-key")
        return {"id": await broadcaster.publish(topic, data, idempotency_key=key)}

    async with broadcaster, AsyncTestClient(Litestar([publish])) as client:
        headers = {"Idempotency-Key": "secret-key-1"}
        first = await client.post("/publish/room", content=b"secret one", headers=headers)
        assert first.status_code == 201
        again = await client.post("/publish/room", content=b"secret one", headers=headers)
        assert again.json() == first.json()
        other = await client.post("/publish/room", content=b"secret two", headers=headers)
        assert other.status_code == 409
        assert other.json()["detail"] == "Idempotency key already used with another event"
        assert b"secret" not in other.content


async def test_many_keys_never_push_a_key_out_of_its_window() -> None:
    # 100,000 keys of an attacker pushed the oldest key out of the in-memory window: its
    # retry then stored the event a second time.
    async with Broadcaster(MemoryBackend()) as broadcaster:
        first = await broadcaster.publish("orders", "order 1", idempotency_key="order-1")
        refused: list[int] = []
        for number in range(MAX_IDEMPOTENCY_KEYS + 10):
            try:
                await broadcaster.publish("spam", "x", idempotency_key=f"a-{number}")
            except TooManyIdempotencyKeysError as exc:
                refused.append(exc.status_code)
        assert refused == [429] * 11  # past the cap new keys are refused; none is forgotten
        assert await broadcaster.publish("orders", "order 1", idempotency_key="order-1") == first
        replay = [item async for item in broadcaster.history("orders")]
        assert [getattr(item, "id", None) for item in replay] == [first]


async def test_a_key_is_forgotten_when_its_window_ends_and_frees_its_room() -> None:
    now = [0.0]
    backend = MemoryBackend(idempotency_window=10, max_idempotency_keys=2, clock=lambda: now[0])
    async with Broadcaster(backend) as broadcaster:
        one = await broadcaster.publish("t", "x", idempotency_key="1")
        await broadcaster.publish("t", "x", idempotency_key="2")
        with pytest.raises(TooManyIdempotencyKeysError):
            await broadcaster.publish("t", "x", idempotency_key="3")
        now[0] = 9.9  # still within the window: still honoured
        assert await broadcaster.publish("t", "x", idempotency_key="1") == one
        now[0] = 10.0  # both ended
        three = await broadcaster.publish("t", "x", idempotency_key="3")
        assert await broadcaster.publish("t", "y", idempotency_key="1") not in (one, three)


@pytest.mark.parametrize("value", [0, -1, 1.5, None])
def test_max_idempotency_keys_is_checked(value: object) -> None:
    with pytest.raises((ValueError, TypeError), match="max_idempotency_keys"):
        MemoryBackend(max_idempotency_keys=value)  # type: ignore[arg-type]
