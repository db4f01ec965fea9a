"""A uvicorn server process serving one implementation: ``python -m benchmarks.server``.

It binds 127.0.0.1 on a free port itself and prints ``PORT <n>`` once listening, so the parent
never races another process for a port. Runs until terminated.
"""

from __future__ import annotations

import argparse
import socket
import sys
from typing import Any, NoReturn

from benchmarks.apps import by_name
from benchmarks.processes import raise_fd_limit
from benchmarks.workload import StreamSpec

BACKLOG = 16384  # the kernel caps it at net.core.somaxconn


def loop_setting() -> str:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def http_setting() -> str:
    try:
        import httptools  # noqa: F401
    except ImportError:
        return "h11"
    return "httptools"


def serve(app: Any) -> NoReturn:
    """Serve ``app`` with uvicorn on a free loopback port (printed as ``PORT <n>``); no return."""
    import uvicorn

    raise_fd_limit()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(BACKLOG)
    config = uvicorn.Config(
        app,
        http=http_setting(),
        loop=loop_setting(),
        backlog=BACKLOG,
        log_level="warning",
        access_log=False,
        # No limit_concurrency: the idle scenario opens thousands of streams on purpose.
        timeout_graceful_shutdown=1,
    )
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    uvicorn.Server(config).run(sockets=[sock])
    sys.exit(0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--impl", required=True)
    parser.add_argument("--spec", required=True, help="StreamSpec as JSON")
    args = parser.parse_args(argv)
    serve(by_name(args.impl).build(StreamSpec.from_cli(args.spec)))


if __name__ == "__main__":
    main()
