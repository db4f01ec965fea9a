"""One worker of the scale scenario: ``python -m benchmarks.scale_server``.

uvicorn (httptools and uvloop when installed) serving one app of ``benchmarks.scale_apps`` on a
free loopback port, printed as ``PORT <n>`` once listening. The scenario starts W of them, one
port each, as a load balancer in front of ``uvicorn --workers W`` would spread the streams.
"""

from __future__ import annotations

import argparse

from benchmarks.scale_apps import IMPLS, build
from benchmarks.server import serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--impl", required=True, choices=IMPLS)
    parser.add_argument("--url", required=True, help="redis://127.0.0.1:<port>/0")
    parser.add_argument("--prefix", required=True, help="Redis key prefix of this run")
    args = parser.parse_args(argv)
    serve(build(args.impl, args.url, args.prefix))


if __name__ == "__main__":
    main()
