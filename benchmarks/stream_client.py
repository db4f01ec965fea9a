"""Load client of the end-to-end scenario: ``python -m benchmarks.stream_client``.

Opens C connections to ``GET /stream?n=N`` at once (``Connection: close``, so the end of the
stream is the end of the socket), reads with large non-blocking ``recv`` calls and counts
``data:`` fields across chunk boundaries. Prints one JSON line: the wall time from the first
request to the last byte, per-client times and event counts. It stays out of the server's way
by doing almost nothing per event.
"""

from __future__ import annotations

import argparse
import json
import selectors
import socket
import time

RECV = 1 << 18
MARK = b"data:"


class Reader:
    def __init__(self, port: int, n: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.request = (
            f"GET /stream?n={n} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Accept: text/event-stream\r\nConnection: close\r\n\r\n"
        ).encode()
        self.head = b""
        self.tail = b""
        self.events = 0
        self.bytes = 0
        self.started = 0.0
        self.finished = 0.0

    def send(self) -> None:
        self.started = time.perf_counter()
        self.sock.sendall(self.request)
        self.sock.setblocking(False)

    def feed(self, chunk: bytes) -> None:
        self.bytes += len(chunk)
        if len(self.head) < 12:
            self.head += chunk[:12]
        # A field split between two reads is found in the previous read's last bytes.
        window = self.tail + chunk
        self.events += window.count(MARK)
        self.tail = window[-(len(MARK) - 1) :]

    def status(self) -> int:
        parts = self.head.split(b" ")
        return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def run(port: int, n: int, clients: int, timeout: float) -> dict[str, object]:
    readers = [Reader(port, n) for _ in range(clients)]
    selector = selectors.DefaultSelector()
    t0 = time.perf_counter()
    for reader in readers:
        reader.send()
        selector.register(reader.sock, selectors.EVENT_READ, reader)
    open_count = clients
    deadline = time.monotonic() + timeout
    while open_count and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=1.0):
            reader = key.data
            chunk = reader.sock.recv(RECV)
            if chunk:
                reader.feed(chunk)
                continue
            reader.finished = time.perf_counter()
            selector.unregister(reader.sock)
            reader.sock.close()
            open_count -= 1
    wall = time.perf_counter() - t0
    for reader in readers:
        reader.sock.close()
    return {
        "wall": wall,
        "timed_out": open_count,
        "times": [r.finished - r.started if r.finished else None for r in readers],
        "events": [r.events for r in readers],
        "bytes": [r.bytes for r in readers],
        "status": [r.status() for r in readers],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()
    print(json.dumps(run(args.port, args.n, args.clients, args.timeout)), flush=True)


if __name__ == "__main__":
    main()
