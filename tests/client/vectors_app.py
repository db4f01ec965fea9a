"""A raw ASGI app (no framework) that serves the WPT format vectors byte for byte, for
Chromium's ``EventSource`` and ours to read the same bytes.

``/s/{name}?c={client}`` answers the n-th request of that client with the scenario's n-th
response, then ``204`` (which ends both sources). ``/log`` lists the ``Last-Event-ID`` each
request carried; ``/`` is an empty page for the browser.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any
from urllib.parse import parse_qs

from tests.codec.test_wpt_format import SCENARIOS

requests: dict[str, list[str | None]] = defaultdict(list)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path: str = scope["path"]
    headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
    status, content_type, body = 200, b"text/html", b"<!doctype html><title>vectors</title>"
    if path.startswith("/s/"):
        name = path[3:]
        client = parse_qs(scope["query_string"].decode()).get("c", ["?"])[0]
        seen = requests[f"{client}:{name}"]
        seen.append(headers.get("last-event-id"))
        responses = SCENARIOS[name].responses
        if len(seen) <= len(responses):
            content_type, body = b"text/event-stream", responses[len(seen) - 1][0]
        else:
            status, body = 204, b""
    elif path == "/log":
        content_type, body = b"application/json", json.dumps(requests).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type), (b"cache-control", b"no-store")],
        }
    )
    await send({"type": "http.response.body", "body": body})
