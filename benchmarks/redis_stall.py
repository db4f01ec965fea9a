"""Redis stopped (SIGSTOP) for 12 s while a publisher publishes once a second.

``.venv/bin/python -m benchmarks.redis_stall`` starts its own redis-server (port 6393), and
prints, with and without the client's ``socket_timeout``, what the ten publishes raised, the
longest any took, and how many times each message was delivered once the failed ones were
retried with their idempotency keys after Redis resumed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections import Counter

from redis.asyncio import Redis

from litestar_sse.broadcast import Broadcaster, RedisStreamBackend
from litestar_sse.broadcast.errors import BackendUnavailableError

PORT = 6393
STALL = 12.0
PUBLISHES = 10


async def _publish(broadcaster: Broadcaster, index: int) -> tuple[str, float]:
    await asyncio.sleep(index)
    started = time.monotonic()
    try:
        await broadcaster.publish("t", f"m{index}", idempotency_key=f"m{index}")
    except BackendUnavailableError as exc:
        return type(exc).__name__, round(time.monotonic() - started, 2)
    return "published", round(time.monotonic() - started, 2)


async def run(server: subprocess.Popen[bytes], socket_timeout: float | None) -> None:
    client = Redis.from_url(f"redis://127.0.0.1:{PORT}/0", socket_timeout=socket_timeout)
    backend = RedisStreamBackend(client, prefix=f"stall-{time.time_ns()}:")
    async with Broadcaster(backend) as broadcaster:
        subscription = await broadcaster.open_subscription("t")
        await asyncio.gather(*(broadcaster.publish("t", f"warm {i}") for i in range(5)))
        os.kill(server.pid, signal.SIGSTOP)
        try:
            tasks = [asyncio.ensure_future(_publish(broadcaster, i)) for i in range(PUBLISHES)]
            await asyncio.sleep(STALL)
        finally:
            os.kill(server.pid, signal.SIGCONT)
        outcomes = await asyncio.gather(*tasks)
        for index in range(PUBLISHES):
            await broadcaster.publish("t", f"m{index}", idempotency_key=f"m{index}")
        await broadcaster.publish("t", "end")
        body = b""
        while b"data: end" not in body:
            body += (await asyncio.wait_for(subscription.__anext__(), 10)).encode()
        deliveries = Counter(line for line in body.split(b"\r\n") if line.startswith(b"data: m"))
        print(
            {"socket_timeout": socket_timeout,
             "outcomes": dict(Counter(name for name, _ in outcomes)),
             "longest_s": max(seconds for _, seconds in outcomes),
             "messages": len(deliveries),
             "deliveries_per_message": sorted(set(deliveries.values()))}
        )  # fmt: skip
        subscription.close()
    await client.aclose()


def main() -> None:
    server = subprocess.Popen(
        ["redis-server", "--port", str(PORT), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        asyncio.run(run(server, None))
        asyncio.run(run(server, 5.0))
    finally:
        os.kill(server.pid, signal.SIGCONT)
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
