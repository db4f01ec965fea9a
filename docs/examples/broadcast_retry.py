"""Publishing while Redis may stall: one idempotency key per message, kept across retries."""

import asyncio
import contextlib
import uuid
from typing import Annotated, Any

from litestar import Litestar, post
from litestar.di import NamedDependency
from litestar.params import HeaderParameter, JSONBody, PathParameter

from litestar_sse import SSEConfig, SSEPlugin
from litestar_sse.broadcast import Broadcaster
from litestar_sse.broadcast.errors import NotPublishedError, PublishOutcomeUnknownError

Room = Annotated[str, PathParameter(pattern=r"^[a-z0-9-]{1,32}$")]


async def publish_reliably(
    broadcaster: Broadcaster, topic: str, data: Any, *, attempts: int = 5
) -> str:
    key = uuid.uuid4().hex  # one key per message, the same for each of its attempts
    for attempt in range(attempts - 1):
        # Not stored, or maybe stored: either way, the same key stores it once.
        with contextlib.suppress(NotPublishedError, PublishOutcomeUnknownError):
            return await broadcaster.publish(topic, data, idempotency_key=key)
        await asyncio.sleep(0.2 * 2**attempt)
    return await broadcaster.publish(topic, data, idempotency_key=key)  # or raises


@post("/rooms/{room:str}/messages")
async def say(
    room: Room,
    data: JSONBody[dict[str, str]],
    broadcaster: NamedDependency[Broadcaster],
    idempotency_key: Annotated[str | None, HeaderParameter(name="Idempotency-Key")] = None,
) -> dict[str, str]:
    # The client's own key: when it gets a 503 and sends the message again with the same
    # header, the message is stored once. An invalid key is a 400.
    event_id = await broadcaster.publish(
        f"room:{room}", data, event="message", idempotency_key=idempotency_key
    )
    return {"id": event_id}


app = Litestar([say], plugins=[SSEPlugin(SSEConfig(broadcaster=Broadcaster()))])
