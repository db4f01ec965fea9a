"""Following a broadcast topic from Python: reconnects, resumes, and says what was missed."""

import msgspec

from litestar_sse.client import EventSource, Gap


class Score(msgspec.Struct):
    home: int
    away: int


async def follow(url: str, last_event_id: str | None = None) -> None:
    async with EventSource(
        url,
        data_type=Score,  # each event's data decoded as the server encoded it
        idle_timeout=45,  # no event or ping for 45 s: a dead connection, reconnect
        last_event_id=last_event_id,  # resume where a previous run stopped
    ) as source:
        async for item in source:
            if isinstance(item, Gap):
                # The server could not replay everything: reload the state, then read on.
                print(f"missed events ({item.reason}); resuming after {item.id}")
                continue
            print(item.id, item.value.home, item.value.away)
