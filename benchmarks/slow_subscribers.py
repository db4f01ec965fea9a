"""What clients that stop reading cost a real uvicorn process: its RSS, and CPU time.

``.venv/bin/python -m benchmarks.slow_subscribers [--scenario NAME ...]``

Each scenario starts ``uvicorn benchmarks.slow_subscribers_app:app`` (and, for the Redis
ones, a redis-server of its own), opens clients with a 4 KiB receive buffer that read the
response head and then nothing, and prints the server's RSS (``VmRSS``, and the peak
``VmHWM``) before and after:

* ``burst``: 100 subscribers, then 300 events of 32 KiB (9.4 MiB) published at once;
* ``big``: 20 subscribers, then one event of 48 MiB;
* ``resume``: Redis; 20 topics x 1,000 events of 2 KB, then 20 clients resuming all of them
  from the start; also the longest Redis command while one more client reads its whole
  replay (Redis' slow log);
* ``refused``: Redis, ``max_connections=1`` taken; a client resuming the same 20 topics gets
  a 503: the server's CPU time for that request, and the bytes Redis sent for it.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from benchmarks.processes import cpu_seconds, rss_kib, stop_process
from litestar_sse.codec._decoder import EventDecoder

ROOT = Path(__file__).resolve().parents[1]
MIB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


@contextmanager
def redis_server() -> Iterator[str]:
    """A throw-away redis-server; yields its URL."""
    port = free_port()
    with tempfile.TemporaryDirectory() as directory:
        command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        command += ["--appendonly", "no", "--dir", directory]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        try:
            wait_listening(port, process)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            stop_process(process)


@contextmanager
def app_server(**env: str) -> Iterator[tuple[str, int]]:
    """``uvicorn benchmarks.slow_subscribers_app:app``; yields its URL and process id."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "benchmarks.slow_subscribers_app:app"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env})
    try:
        wait_listening(port, process)
        yield f"http://127.0.0.1:{port}", process.pid
    finally:
        stop_process(process)


def silent_client(url: str, path: str, headers: dict[str, str] | None = None) -> socket.socket:
    """Request ``path`` with a tiny receive buffer, read the response head, then never read
    again. Returns the socket (close it to leave)."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(30)
    sock.connect((host, int(port)))
    extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        byte = sock.recv(1)
        if not byte:
            raise RuntimeError(f"closed before the response head: {head!r}")
        head += byte
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"not a stream: {head!r}")
    return sock


def state(url: str) -> dict[str, Any]:
    response = httpx.get(f"{url}/state", timeout=30)
    response.raise_for_status()
    return dict(response.json())


def wait_subscribers(url: str, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while state(url)["subscribers"] < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"fewer than {count} subscribers")
        time.sleep(0.05)


def memory(pid: int) -> tuple[int, int]:
    """``(VmRSS, VmHWM)`` of a process, in bytes."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) * 1024
    return fields["VmRSS"], fields["VmHWM"]


def settled_rss(pid: int, quiet: float = 1.0, timeout: float = 30) -> int:
    """The RSS once it stopped changing by more than 1 MiB for ``quiet`` seconds."""
    deadline = time.monotonic() + timeout
    last, since = rss_kib(pid) * 1024, time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = rss_kib(pid) * 1024
        if abs(now - last) > MIB:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return now
    return rss_kib(pid) * 1024


def publish(url: str, topics: list[str], count: int, size: int) -> str:
    query = "&".join(f"topic={topic}" for topic in topics)
    response = httpx.post(f"{url}/publish?{query}&count={count}&size={size}", timeout=600)
    response.raise_for_status()
    return str(response.json()["last"])


def silent_subscribers(
    url: str, pid: int, clients: int, path: str, publish_args: tuple[list[str], int, int]
) -> dict[str, float]:
    """Open ``clients`` silent subscribers, publish, and measure the RSS before and after."""
    sockets = [silent_client(url, path) for _ in range(clients)]
    try:
        wait_subscribers(url, clients)
        before = settled_rss(pid)
        publish(url, *publish_args)
        after = settled_rss(pid)
        peak = memory(pid)[1]
        still = state(url)["subscribers"]
    finally:
        for sock in sockets:
            sock.close()
    return {"rss_before": before, "rss_after": after, "peak": peak, "subscribers_after": still}


def burst(clients: int = 100, count: int = 300, size: int = 32 * 1024) -> dict[str, float]:
    """Silent subscribers, then ``count`` events of ``size`` bytes published at once."""
    with app_server() as (url, pid):
        return silent_subscribers(url, pid, clients, "/events?topic=t", (["t"], count, size))


def big(clients: int = 20, size: int = 48 * MIB) -> dict[str, float]:
    """Silent subscribers, then one event of ``size`` bytes."""
    with app_server() as (url, pid):
        return silent_subscribers(url, pid, clients, "/events?topic=t", (["t"], 1, size))


TOPICS = [f"t{index}" for index in range(20)]
TOPICS_QUERY = "&".join(f"topic={topic}" for topic in TOPICS)


def resume(clients: int = 20, per_topic: int = 1000, size: int = 2000) -> dict[str, float]:
    """Clients resuming 20 topics from the start and reading nothing; then one reading it
    all while Redis logs its slow commands."""
    import redis

    with redis_server() as redis_url, app_server(SLOW_REDIS_URL=redis_url) as (url, pid):
        first = publish(url, ["t0"], 1, 10)
        publish(url, TOPICS, per_topic, size)
        before = settled_rss(pid)
        resumed = f"/events?{TOPICS_QUERY}"
        sockets = [silent_client(url, resumed, {"Last-Event-ID": first}) for _ in range(clients)]
        try:
            wait_subscribers(url, clients * len(TOPICS))
            after = settled_rss(pid)
        finally:
            for sock in sockets:
                sock.close()
        client = redis.Redis.from_url(redis_url)
        client.config_set("slowlog-max-len", 100_000)
        client.config_set("slowlog-log-slower-than", 1000)  # microseconds
        client.slowlog_reset()
        events = read_all(url, resumed, first, len(TOPICS) * per_topic)
        slow = [entry["duration"] for entry in client.slowlog_get(100_000)]
        client.close()
    return {
        "rss_before": before,
        "rss_after": after,
        "replayed_to_a_reader": events,
        "redis_commands_over_1ms": len(slow),
        "longest_redis_command_ms": max(slow, default=0) / 1000,
    }


def read_all(url: str, path: str, last_event_id: str, expected: int) -> int:
    """Read a resumed stream until ``expected`` events came; return how many did."""
    decoder, count = EventDecoder(), 0
    headers = {"Last-Event-ID": last_event_id}
    with httpx.stream("GET", f"{url}{path}", headers=headers, timeout=120) as response:
        for chunk in response.iter_bytes():
            count += sum(1 for _ in decoder.feed(chunk))
            if count >= expected:
                break
    return count


def refused(per_topic: int = 1000, size: int = 2000) -> dict[str, float]:
    """A resume refused by ``max_connections``: what the server spent on it."""
    import redis

    with (
        redis_server() as redis_url,
        app_server(SLOW_REDIS_URL=redis_url, SLOW_MAX_CONNECTIONS="1") as (url, pid),
    ):
        first = publish(url, ["t0"], 1, 10)
        publish(url, TOPICS, per_topic, size)
        holder = silent_client(url, "/events?topic=other")
        client = redis.Redis.from_url(redis_url)
        try:
            time.sleep(0.5)
            cpu, sent = cpu_seconds(pid), _redis_output(client)
            response = httpx.get(
                f"{url}/events?{TOPICS_QUERY}", headers={"Last-Event-ID": first}, timeout=60
            )
            cpu, sent = cpu_seconds(pid) - cpu, _redis_output(client) - sent
        finally:
            holder.close()
            client.close()
    return {"status": response.status_code, "server_cpu_s": cpu, "redis_sent_bytes": sent}


def _redis_output(client: Any) -> int:
    return int(client.info("stats")["total_net_output_bytes"])


SCENARIOS: dict[str, Callable[[], dict[str, float]]] = {
    "burst": burst,
    "big": big,
    "resume": resume,
    "refused": refused,
}


def _show(name: str, figures: dict[str, float]) -> None:
    parts = []
    if "rss_before" in figures:
        before, after = figures["rss_before"] / MIB, figures["rss_after"] / MIB
        parts.append(f"RSS {before:.0f} -> {after:.0f} MiB ({after - before:+.0f})")
    if "peak" in figures:
        parts.append(f"peak {figures['peak'] / MIB:.0f} MiB")
    for key, value in figures.items():
        if key not in ("rss_before", "rss_after", "peak"):
            parts.append(f"{key} {value:.3f}" if isinstance(value, float) else f"{key} {value}")
    print(f"{name}: " + ", ".join(parts), flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS))
    args = parser.parse_args(argv)
    for name in args.scenario or list(SCENARIOS):
        _show(name, SCENARIOS[name]())


if __name__ == "__main__":
    main()
