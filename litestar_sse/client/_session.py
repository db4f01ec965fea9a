"""The sans-I/O part of an event source: settings, responses read, bytes in, events out, and
how long to wait before the next attempt. The async and sync sources drive it with I/O."""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

import httpx
import msgspec

from litestar_sse._validation import check_count, check_seconds
from litestar_sse.client._events import (
    DataDecodeError,
    Event,
    EventSourceError,
    Gap,
    GapError,
    ResponseError,
    data_decoder,
    same_text,
)
from litestar_sse.client._request import RequestSpec
from litestar_sse.codec import DecodedEvent, DecodeError, EventDecoder, check_event_id
from litestar_sse.codec._decoder import DEFAULT_MAX_EVENT_LENGTH, DEFAULT_MAX_LINE_LENGTH

__all__ = ("Backoff", "Reader", "Session", "Settings", "check_response", "retry_after")

IDEMPOTENT_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
"""Methods a request may be sent again with (RFC 9110, 9.2.2): a reconnect repeats them."""

RETRIED_STATUSES: Final = frozenset({408, 429})
"""4xx statuses worth another attempt; every other 4xx ends the source."""

RESUMED_FROM_HEADER: Final = "sse-resumed-from"
GAP_HEADER: Final = "sse-gap"

_GAP_JSON: Final = msgspec.json.Decoder()


@dataclass(frozen=True)
class Settings:
    """The validated settings of a source (see :class:`~litestar_sse.client.EventSource`)."""

    method: str
    reconnect: bool
    retry: float
    min_delay: float
    max_delay: float
    max_attempts: int | None
    idle_timeout: float | None
    gap_event: str | None
    gaps: Literal["yield", "raise"]
    max_line_length: int | None
    max_event_length: int | None

    @classmethod
    def check(
        cls,
        *,
        method: str,
        reconnect: bool | None,
        retry: float,
        min_delay: float,
        max_delay: float,
        max_attempts: int | None,
        idle_timeout: float | None,
        gap_event: str | None,
        gaps: str,
        max_line_length: int | None,
        max_event_length: int | None,
    ) -> Settings:
        """Check every setting; raise ``ValueError`` naming the one to fix."""
        method = method.upper()
        retry = _required_seconds(retry, "retry")
        min_delay = _required_seconds(min_delay, "min_delay")
        max_delay = _required_seconds(max_delay, "max_delay", zero=False)
        if max_delay < min_delay:
            raise ValueError(f"max_delay ({max_delay}) must not be below min_delay ({min_delay})")
        idle_timeout = check_seconds(idle_timeout, "idle_timeout")
        max_attempts = check_count(max_attempts, "max_attempts", minimum=1)
        if gaps not in ("yield", "raise"):
            raise ValueError(f"gaps must be 'yield' or 'raise', not {gaps!r}")
        max_line_length = check_count(max_line_length, "max_line_length", minimum=1)
        max_event_length = check_count(max_event_length, "max_event_length", minimum=1)
        return cls(
            method=method,
            reconnect=method in IDEMPOTENT_METHODS if reconnect is None else reconnect,
            retry=retry,
            min_delay=min_delay,
            max_delay=max_delay,
            max_attempts=max_attempts,
            idle_timeout=idle_timeout,
            gap_event=gap_event,
            gaps=gaps,  # type: ignore[arg-type]
            max_line_length=max_line_length,
            max_event_length=max_event_length,
        )


DEFAULT_LIMITS: Final = (DEFAULT_MAX_LINE_LENGTH, DEFAULT_MAX_EVENT_LENGTH)


def _required_seconds(value: float, name: str, *, zero: bool = True) -> float:
    seconds = check_seconds(value, name, zero=zero)
    if seconds is None:
        raise TypeError(f"{name} must be a number of seconds, not None")
    return seconds


class Reader:
    """Bytes of successive responses in, events and gaps out; what to resume from.

    One per source, across its connections: the last event id and the server's ``retry``
    carry over, an event whose blank line never arrived is dropped with its id (the codec
    guarantees it), and the ``SSE-Gap`` header of a response is reported once, by the gap
    event that follows it or, if the connection ends first, at its end.
    """

    __slots__ = ("_decoder", "_gap_event", "_header_gap", "resumed_from")

    def __init__(self, settings: Settings, last_event_id: str | None) -> None:
        self._decoder = EventDecoder(
            max_line_length=settings.max_line_length, max_event_length=settings.max_event_length
        )
        self._gap_event = settings.gap_event
        self._header_gap: str | None = None
        self.resumed_from: str | None = None
        """The latest response's ``SSE-Resumed-From`` header, if it had one."""
        if last_event_id:
            check_event_id(last_event_id, "last_event_id")
            # An id-only block moves the decoder's last event id without dispatching anything.
            self._decoder.feed(b"id: " + last_event_id.encode() + b"\n\n")
            self._decoder.close()

    @property
    def last_event_id(self) -> str:
        """The id to send as ``Last-Event-ID`` (after :meth:`close`)."""
        return self._decoder.last_event_id

    @property
    def retry(self) -> int | None:
        """The server's reconnection time in milliseconds, if it sent one."""
        return self._decoder.retry

    def open(self, headers: Mapping[str, str]) -> None:
        """A response was accepted: read its resume headers."""
        self.resumed_from = headers.get(RESUMED_FROM_HEADER)
        self._header_gap = headers.get(GAP_HEADER) or None

    def feed(self, chunk: bytes) -> list[DecodedEvent | Gap]:
        """The events (and gaps) completed by ``chunk``.

        Raises:
            EventSourceError: a line or an event passed its limit.
        """
        try:
            events: list[Any] = self._decoder.feed(chunk)
        except DecodeError as exc:
            raise EventSourceError(
                f"{exc}: the server sent more than this source accepts "
                "(raise max_line_length / max_event_length if such events are expected)"
            ) from None
        if self._gap_event is not None:
            for index, event in enumerate(events):
                if event.event == self._gap_event:
                    gap = self._gap(event)
                    if gap is not None:
                        events[index] = gap
        return events

    def close(self) -> list[Gap]:
        """The connection ended: drop its unfinished event; report a gap only its header told."""
        self._decoder.close()
        reason, self._header_gap = self._header_gap, None
        if reason is None:
            return []
        return [Gap(reason, self.last_event_id, source="header")]

    def _gap(self, event: DecodedEvent) -> Gap | None:
        try:
            details = _GAP_JSON.decode(event.data)
        except msgspec.DecodeError:
            return None
        if not isinstance(details, dict) or not isinstance(details.get("reason"), str):
            return None  # an event of that name that is not ours: an ordinary event
        self._header_gap = None
        topics = details.get("topics")
        return Gap(
            details["reason"],
            event.id,
            tuple(topic for topic in topics if isinstance(topic, str))
            if isinstance(topics, list)
            else (),
            details=details,
        )


Verdict = Literal["open", "done", "retry", "fail"]


def check_response(status: int, content_type: str | None) -> tuple[Verdict, str]:
    """What a response means for the source, and why (a message for the error).

    ``200`` with ``text/event-stream`` opens; ``204`` ends the source (the server's way to
    say "no more"); ``408``, ``429`` and ``5xx`` are tried again; anything else ends it with
    an error, as a browser's ``EventSource`` fails the connection. Unlike a browser, any other
    ``2xx`` opens too: a ``POST`` stream may well answer ``201`` (Litestar's ``@post`` does).
    """
    if 200 <= status <= 299 and status != 204:
        media = (content_type or "").partition(";")[0].strip().lower()
        if media == "text/event-stream":
            return "open", ""
        return "fail", (
            f"the response's Content-Type is {content_type!r}, not text/event-stream: "
            "this URL does not serve an event stream"
        )
    if status == 204:
        return "done", ""
    if status in RETRIED_STATUSES or 500 <= status <= 599:
        return "retry", f"the server answered {status}"
    if 300 <= status <= 399:
        return "fail", (
            f"the server answered {status} (a redirect) and the client did not follow it: "
            "pass follow_redirects=True"
        )
    return "fail", f"the server answered {status}: not retried"


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delay-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class Backoff:
    """How long to wait before the next attempt.

    After a connection that delivered events, the server's ``retry`` (or the default), as a
    browser waits. After attempts that failed in a row, that doubled per failure, capped at
    ``max_delay``, with jitter (between half and all of it, never under ``retry``), so a fleet
    of clients does not come back in step. Never below ``min_delay``, whatever the server
    says; a ``Retry-After`` is honoured above all of these.
    """

    __slots__ = ("_random", "failures", "settings")

    def __init__(self, settings: Settings, rng: random.Random | None = None) -> None:
        self.settings = settings
        self.failures = 0
        """Attempts that failed since the last one that delivered an event."""
        self._random = rng or random.Random()

    def succeeded(self) -> None:
        """A connection delivered an event: the next wait is the plain ``retry``."""
        self.failures = 0

    def failed(self) -> None:
        """An attempt failed (no connection, a retried status, a stream with no event)."""
        self.failures += 1

    def exhausted(self) -> bool:
        """Whether ``max_attempts`` failures in a row were reached."""
        limit = self.settings.max_attempts
        return limit is not None and self.failures >= limit

    def delay(self, server_retry_ms: int | None, retry_after: float | None = None) -> float:
        """Seconds to wait before the next attempt."""
        settings = self.settings
        base = settings.retry if server_retry_ms is None else server_retry_ms / 1000
        delay = base
        if self.failures > 1:
            grown = min(settings.max_delay, base * 2.0 ** min(self.failures - 1, 30))
            delay = max(base, grown / 2 + self._random.uniform(0, grown / 2))
        delay = min(delay, max(settings.max_delay, base))
        delay = max(delay, settings.min_delay)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return delay


class Session:
    """A source but its I/O, shared by the async and the sync one: the checked settings, the
    request to send, the reader and backoff kept across connections, and how an item read is
    handed to the user."""

    __slots__ = ("backoff", "decode", "reader", "request", "settings")

    def __init__(
        self,
        url: Any,
        *,
        method: str,
        params: Any,
        headers: Mapping[str, str] | None,
        content: bytes | str | None,
        json: Any,
        data: Mapping[str, Any] | None,
        auth: Any,
        timeout: float | None,
        idle_timeout: float | None,
        follow_redirects: bool,
        reconnect: bool | None,
        retry: float,
        min_delay: float,
        max_delay: float,
        max_attempts: int | None,
        last_event_id: str | None,
        data_type: Any,
        gap_event: str | None,
        gaps: str,
        max_line_length: int | None,
        max_event_length: int | None,
        client: object,
        client_type: type,
        other_source: str,
    ) -> None:
        self.settings = Settings.check(
            method=method,
            reconnect=reconnect,
            retry=retry,
            min_delay=min_delay,
            max_delay=max_delay,
            max_attempts=max_attempts,
            idle_timeout=idle_timeout,
            gap_event=gap_event,
            gaps=gaps,
            max_line_length=max_line_length,
            max_event_length=max_event_length,
        )
        self.request = RequestSpec(
            method,
            url,
            params=params,
            headers=headers,
            content=content,
            json=json,
            data=data,
            auth=auth,
            timeout=timeout,
            follow_redirects=follow_redirects,
        )
        if client is not None and not isinstance(client, client_type):
            raise TypeError(
                f"client must be an httpx.{client_type.__name__}, not {type(client).__name__} "
                f"({other_source})"
            )
        self.reader = Reader(self.settings, last_event_id)
        self.backoff = Backoff(self.settings)
        decode = data_decoder(data_type)
        self.decode: Callable[[str], Any] | None = None if decode is same_text else decode

    @property
    def retry(self) -> float:
        """Seconds to wait before reconnecting (see ``EventSource.retry``)."""
        server = self.reader.retry
        base = self.settings.retry if server is None else server / 1000
        return max(base, self.settings.min_delay)

    def deliver(self, item: DecodedEvent | Gap) -> Event[Any] | Gap:
        """The item as the user gets it: a gap (or :class:`GapError`), or a decoded event."""
        if isinstance(item, Gap):
            if self.settings.gaps == "raise":
                raise GapError(item)
            return item
        data = item.data
        if self.decode is None:
            return Event(data, item.event, item.id, item.retry, data)
        try:
            value = self.decode(data)
        except Exception as exc:
            raise DataDecodeError(item.event, item.id, exc) from exc
        return Event(data, item.event, item.id, item.retry, value)

    def unreachable(self, exc: Exception) -> None:
        """No response came (``exc``, a transport error): count a failed attempt.

        Raises:
            EventSourceError: the source does not reconnect, or the URL's scheme is unsupported.
        """
        if not self.settings.reconnect or isinstance(exc, httpx.UnsupportedProtocol):
            raise EventSourceError(f"cannot reach the stream: {exc!r}") from exc
        self.backoff.failed()

    def refused(
        self, verdict: Verdict, why: str, status: int, headers: httpx.Headers
    ) -> float | None:
        """A response that opened no stream (see :func:`check_response`, not ``"done"``) was
        closed: count a failed attempt; return the seconds its ``Retry-After`` asks to wait.

        Raises:
            ResponseError: the response is not to be tried again, or the source does not
                reconnect.
        """
        if verdict == "fail" or not self.settings.reconnect:
            raise ResponseError(why, status, headers)
        self.backoff.failed()
        return retry_after(headers.get("retry-after"))

    def ended(self, broken: Exception | None, delivered: bool) -> bool:
        """A stream ended (``broken``: how it broke); whether the source ends with it.

        Raises:
            EventSourceError: it broke, and the source does not reconnect.
        """
        if not self.settings.reconnect:
            if broken is None:
                return True
            raise EventSourceError(
                f"the stream broke ({broken!r}) and a {self.settings.method} request is "
                "not sent again unless reconnect=True"
            ) from broken
        if not delivered:  # a drop after events is no failed attempt
            self.backoff.failed()
        return False

    def next_delay(self, retry_after: float | None) -> float:
        """Seconds to wait before the next attempt.

        Raises:
            EventSourceError: ``max_attempts`` attempts failed in a row.
        """
        backoff = self.backoff
        if backoff.exhausted():
            raise EventSourceError(
                f"gave up after {backoff.failures} failed attempts in a row (max_attempts)"
            )
        return backoff.delay(self.reader.retry, retry_after)
