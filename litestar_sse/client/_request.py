"""The request an event source sends, built again for every attempt."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from litestar_sse._validation import check_seconds

__all__ = ("RequestSpec",)


class RequestSpec:
    """Method, URL, body, headers and auth of a source's request, checked once.

    Each attempt builds a fresh ``httpx.Request`` with ``Last-Event-ID`` set to the id to
    resume from. The body must be bytes, text, JSON or a form: a stream of bytes cannot be
    sent twice.
    """

    __slots__ = (
        "auth",
        "content",
        "data",
        "follow_redirects",
        "headers",
        "json",
        "method",
        "params",
        "timeout",
        "url",
    )

    def __init__(
        self,
        method: str,
        url: httpx.URL | str,
        *,
        params: Any,
        headers: Mapping[str, str] | None,
        content: bytes | str | None,
        json: Any,
        data: Mapping[str, Any] | None,
        auth: Any,
        timeout: float | None,
        follow_redirects: bool,
    ) -> None:
        if content is not None and not isinstance(content, (bytes, str)):
            raise TypeError(
                "content must be bytes or str: a request body may have to be sent again "
                f"when the source reconnects, and a {type(content).__name__} cannot"
            )
        timeout = check_seconds(timeout, "timeout")
        self.method = method.upper()
        self.url = url
        self.params = params
        merged = httpx.Headers({"Accept": "text/event-stream", "Cache-Control": "no-store"})
        merged.update(headers or {})
        if "Last-Event-ID" in merged:
            raise ValueError(
                "pass last_event_id=... instead of a Last-Event-ID header: the source sends "
                "the id it resumes from on every attempt"
            )
        self.headers = merged
        self.content = content
        self.json = json
        self.data = data
        self.auth = httpx.USE_CLIENT_DEFAULT if auth is None else auth
        self.timeout = timeout
        self.follow_redirects = follow_redirects

    def build(
        self,
        client: httpx.AsyncClient | httpx.Client,
        last_event_id: str,
        idle_timeout: float | None,
    ) -> httpx.Request:
        """The request of one attempt, resuming after ``last_event_id`` (if not empty)."""
        headers = self.headers.raw
        if last_event_id:
            # UTF-8, as browsers send it (httpx would refuse a str that is not ASCII).
            headers = [*headers, (b"Last-Event-ID", last_event_id.encode())]
        # Reads wait idle_timeout at most: no byte (event or ping) for that long means the
        # connection is dead, and the source reconnects.
        base = client.timeout
        timeout = httpx.Timeout(
            connect=self.timeout if self.timeout is not None else base.connect,
            read=idle_timeout,
            write=self.timeout if self.timeout is not None else base.write,
            pool=self.timeout if self.timeout is not None else base.pool,
        )
        return client.build_request(
            self.method,
            self.url,
            params=self.params,
            headers=headers,
            content=self.content,
            json=self.json,
            data=self.data,
            timeout=timeout,
        )
