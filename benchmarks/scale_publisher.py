"""The publisher of the scale scenario: ``python -m benchmarks.scale_publisher``.

Publishes ``--events`` events to the topic at ``--rate`` per second, each event's data being
``"<seq> <time.time_ns()>"`` taken just before the publish call, the way the app under test
reads them (``benchmarks.scale_apps.publisher``). Prints ``DONE <json>`` with how long the
publishes took, then exits.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from benchmarks.child import run_loop, say
from benchmarks.scale_apps import IMPLS, publisher, stamp


async def publish_all(impl: str, url: str, prefix: str, events: int, rate: float) -> None:
    took: list[float] = []
    async with publisher(impl, url, prefix) as publish:
        started = time.monotonic()
        for seq in range(events):
            await asyncio.sleep(max(0.0, started + seq / rate - time.monotonic()))
            t0 = time.monotonic()
            await publish(stamp(seq))
            took.append(time.monotonic() - t0)
    say("DONE", {"events": events, "max_publish_ms": max(took, default=0.0) * 1000})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--impl", required=True, choices=IMPLS)
    parser.add_argument("--url", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--rate", type=float, required=True)
    args = parser.parse_args(argv)
    run_loop(publish_all(args.impl, args.url, args.prefix, args.events, args.rate))


if __name__ == "__main__":
    main()
