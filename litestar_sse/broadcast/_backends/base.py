"""What a broadcast backend does, and the values it exchanges with the broadcaster.

A backend stores events and their history; the broadcaster's :class:`~.fanout.FanOut` hands
them to local subscribers. The backend pushes every event that concerns a topic with local
subscribers into the fan-out, in position order, through :meth:`EventSink.deliver`.
"""

from __future__ import annotations

import contextlib
import hashlib
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Generator, Hashable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import (
    TYPE_CHECKING,
    Any,
    Final,
    Generic,
    NamedTuple,
    Protocol,
    TypeAlias,
    TypeVar,
    Union,
)

from litestar.exceptions import (
    ClientException,
    ServiceUnavailableException,
    TooManyRequestsException,
)
from litestar.status_codes import HTTP_409_CONFLICT

from litestar_sse._validation import check_count, check_seconds

if TYPE_CHECKING:
    from litestar_sse.broadcast._backends.replay import Replay
    from litestar_sse.broadcast._events.format import EventFormat
    from litestar_sse.broadcast._events.values import HistoryPage

__all__ = (
    "BACKEND_ERRORS",
    "BackendStats",
    "BackendUnavailableError",
    "BroadcastBackend",
    "EventSink",
    "IdempotencyKeyReusedError",
    "NotPublishedError",
    "Outgoing",
    "PublishOutcomeUnknownError",
    "Retention",
    "RetentionPolicy",
    "Snapshot",
    "TooManyIdempotencyKeysError",
    "current_principal",
    "idempotency_fingerprint",
    "publish_as_while",
    "publishing_as",
    "resolve_retention",
)


class BackendUnavailableError(ServiceUnavailableException):
    """The backend (Redis) cannot be reached: the subscription did not happen.

    A publish raises one of its two subclasses, which say whether the event was stored:
    :class:`NotPublishedError` (certainly not) or :class:`PublishOutcomeUnknownError` (it
    may have been).

    A :class:`litestar.exceptions.ServiceUnavailableException`, so an unhandled one becomes a
    ``503`` response. The original error is chained as ``__cause__``.
    """


class NotPublishedError(BackendUnavailableError):
    """The event was certainly not published: the command never reached Redis (no
    connection could be had, or made ready, before ``publish_timeout``). Retrying is safe.

    Unhandled in a route: ``503`` with ``{"detail": "Redis is unavailable: not published"}``.
    """


class PublishOutcomeUnknownError(BackendUnavailableError):
    """The publish was sent to Redis and no answer came (within ``publish_timeout``, or the
    connection broke): the event may have been stored, and then it is delivered, possibly
    only once Redis resumes. Retry with the same ``idempotency_key`` to have it stored once.

    Unhandled in a route: ``503`` with ``{"detail": "Redis did not answer: the event may
    have been published"}``.
    """


class IdempotencyKeyReusedError(ClientException):
    """A publish reused an ``idempotency_key`` of its topic with another event (another
    event type or other data) within the backend's ``idempotency_window``: nothing was
    stored. A retry must send the very event it retries; a new event needs a new key.

    Unhandled in a route: ``409`` with ``{"detail": "Idempotency key already used with
    another event"}`` (neither the key nor the events are quoted).
    """

    status_code = HTTP_409_CONFLICT

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("detail", "Idempotency key already used with another event")
        super().__init__(*args, **kwargs)


class TooManyIdempotencyKeysError(TooManyRequestsException):
    """The in-memory backend remembers ``max_idempotency_keys`` keys already, none of them
    expired: a publish with a new key is refused (nothing stored) rather than forgetting a
    key before its window ends. Retrying later is safe.

    Unhandled in a route: ``429`` with ``{"detail": "Too many idempotency keys in use"}``.
    """


def idempotency_fingerprint(event: bytes | None, data: bytes) -> bytes:
    """What a backend remembers of an event published with an idempotency key, to tell a
    retry (the same event type and data) from another event reusing the key: 16 bytes of
    BLAKE2b over both (lengths included, so no two pairs read alike)."""
    digest = hashlib.blake2b(digest_size=16)
    if event is None:
        digest.update(b"-")
    else:
        digest.update(b"%d:" % len(event))
        digest.update(event)
    digest.update(data)
    return digest.digest()


_T = TypeVar("_T")

_PRINCIPAL: ContextVar[Callable[[], Hashable] | None] = ContextVar(
    "litestar_sse_principal", default=None
)
"""Who publishes in this context, asked only when it matters (a topic is created)."""


@contextlib.contextmanager
def publishing_as(principal: Hashable | Callable[[], Hashable]) -> Iterator[None]:
    """Publish as ``principal`` inside the block (and in the tasks it starts): who a topic
    a publish creates belongs to, for the caps that must not let one principal evict
    another's topics (see ``MemoryBackend``). ``principal`` is any hashable key (a user id, a
    client address), or a callable giving one when asked.

    Given to :class:`~litestar_sse.SSEConfig` (``broadcaster=``), a broadcaster's publishes
    inside a request are made as the request's ``SSEConfig.client_key`` (its client address
    by default) without this; outside any request and block, as ``None``.
    """
    thunk = principal if callable(principal) else (lambda: principal)
    token = _PRINCIPAL.set(thunk)
    try:
        yield
    finally:
        _PRINCIPAL.reset(token)


def publish_as_while(principal: Hashable, call: Awaitable[_T]) -> Awaitable[_T]:
    """``call``, awaited with its publishes made as ``principal`` (what :func:`publishing_as`
    does for a block), and the principal before it back when it ends. What an app's
    middleware wraps each HTTP request in: one small frame for a stream's whole life instead
    of a coroutine, a context manager and their frames."""
    return _AsPrincipal(lambda: principal, call)


class _AsPrincipal(Generic[_T]):
    """See :func:`publish_as_while`: sets the principal when first stepped, in the context
    of the task that awaits it, and resets it there when the call ends."""

    __slots__ = ("call", "thunk")

    def __init__(self, thunk: Callable[[], Hashable], call: Awaitable[_T]) -> None:
        self.thunk = thunk
        self.call = call

    def __await__(self) -> Generator[Any, Any, _T]:
        token = _PRINCIPAL.set(self.thunk)
        try:
            return (yield from self.call.__await__())
        finally:
            _PRINCIPAL.reset(token)


def current_principal() -> Hashable:
    """The principal publishing now (see :func:`publishing_as`); ``None`` when none is
    known, or when telling it failed."""
    thunk = _PRINCIPAL.get()
    if thunk is None:
        return None
    try:
        return thunk()
    except Exception:  # a client_key that fails: the shared principal, never a failed publish
        return None


BACKEND_ERRORS: Final = (
    "not_published",
    "outcome_unknown",
    "subscribe",
    "replay",
    "read",
    "reader",
)
"""What failed when the backend could not be reached, as the broadcaster counts it: a publish
(:class:`NotPublishedError`, :class:`PublishOutcomeUnknownError`), a subscription, a replay
page, a read of history or of an id's topic, or a round of the backend's own reader."""


class Outgoing(NamedTuple):
    """One event of a batch, as the broadcaster hands it to a backend: checked, encoded."""

    topic: str
    event: bytes | None
    """The event type, UTF-8, or ``None``."""
    data: bytes
    """The text of its ``data`` lines."""
    idempotency_key: str | None = None


@dataclass
class BackendStats:
    """What a backend went through on its own, outside any call the broadcaster makes (the
    Redis backend's reader); :class:`~litestar_sse.broadcast.types.BroadcastStats` includes it.

    Attributes:
        reader_errors: Rounds of the reader that failed (Redis unavailable, or another
            error); each retry counts.
        reconnects: Times the reader read again after failing: outages it recovered from.
    """

    reader_errors: int = 0
    reconnects: int = 0


@dataclass(frozen=True)
class Retention:
    """How much history a topic keeps for clients that reconnect.

    Args:
        max_events: Most events kept per topic; ``None`` for no limit by count.
        max_age: Seconds an event is kept; ``None`` for no limit by age.
        idle_ttl: Seconds a topic's history is kept after its last event, whatever the age
            of its events: once nothing was published to it for that long, the topic is
            dropped whole. For topics made per request or per job, which must not pile up,
            and whose events must all stay while they are active. ``None``: never.

    A client that resumes from an id older than the kept history gets a gap event instead of
    a replay.
    """

    max_events: int | None = 1000
    max_age: float | None = None
    idle_ttl: float | None = None

    def __post_init__(self) -> None:
        check_count(self.max_events, "max_events", minimum=0)
        check_seconds(self.max_age, "max_age")
        check_seconds(self.idle_ttl, "idle_ttl")


RetentionPolicy: TypeAlias = Union[Retention, Callable[[str], Retention]]  # noqa: UP007
"""One :class:`Retention` for every topic, or a function giving each topic its own."""


def resolve_retention(policy: RetentionPolicy, topic: str) -> Retention:
    """The retention of ``topic`` under ``policy``."""
    if isinstance(policy, Retention):
        return policy
    retention = policy(topic)
    if not isinstance(retention, Retention):
        raise TypeError(f"retention({topic!r}) must return a Retention, got {retention!r}")
    return retention


@dataclass(frozen=True)
class Snapshot:
    """Where a new subscriber starts: what to replay, and from which position it is live.

    Attributes:
        resumed_from: The id after which the subscriber's stream starts (the client's own id
            on an exact resume, else the newest id at the time of subscribing).
        history: Encoded events to replay, in order, already in memory. The backends of this
            package leave it empty and give a ``replay`` instead.
        gap: Why events were missed (``"invalid"``, ``"epoch"``, ``"retention"``), or ``None``.
        gap_topics: The topics whose missed events cannot be replayed.
        live_after: Live events at or below this position are already covered by the replay
            (or by the gap) and must be skipped; ``None`` when there cannot be any.
        replay: The missed events (after ``history``), read page by page once the stream
            runs (see :mod:`~litestar_sse.broadcast._backends.replay`); ``None`` when there are
            none.
    """

    resumed_from: str
    history: Sequence[bytes] = ()
    gap: str | None = None
    gap_topics: tuple[str, ...] = ()
    live_after: int | None = None
    replay: Replay | None = None


class EventSink(Protocol):
    """The broadcaster side a backend talks to."""

    format: EventFormat

    def deliver(
        self,
        topic: str,
        position: int,
        chunk: bytes,
        event_id: bytes,
        event: bytes | None,
        data: bytes,
    ) -> None:
        """Hand one encoded event to the local subscribers of ``topic`` (if any): ``chunk``,
        what ``format.event(event_id, event, data)`` wrote, and those parts (a subscriber
        that reads values gets them without parsing ``chunk``)."""

    def reset(self, final: bytes) -> None:
        """The history was lost: end every subscription after sending ``final``."""


class BroadcastBackend(ABC):
    """Stores events and their history; pushes events to the local fan-out."""

    sink: EventSink

    tracks_principals: bool = False
    """Whether the backend asks :func:`current_principal` who creates a topic (then, given
    to ``SSEConfig``, the broadcaster tells it the request's ``client_key``)."""

    def bind(self, sink: EventSink) -> None:
        """Attach the broadcaster this backend serves (called once, before :meth:`start`)."""
        self.sink = sink

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Acquire resources (connections, reader task)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release them."""

    @abstractmethod
    async def publish(
        self,
        topic: str,
        event: bytes | None,
        data: bytes,
        *,
        idempotency_key: str | None = None,
    ) -> str:
        """Store one event and return its id; ``data`` is the text of its ``data`` lines.

        An ``idempotency_key`` belongs to ``topic``: one used on another topic is another
        key. With a key already used on ``topic`` within the backend's idempotency window,
        store nothing and return the id of the event stored under it if it was the same
        event (:func:`idempotency_fingerprint` of its type and data), else raise
        :class:`IdempotencyKeyReusedError`.
        """

    async def publish_many(self, events: Sequence[Outgoing]) -> list[str]:
        """Store ``events`` in their order and return their ids, in that order.

        Each event is published as :meth:`publish` would (its idempotency key included: a
        key used by an earlier event of the batch makes a repeat of that event). The
        backends of this package store the batch in one operation (one round trip to
        Redis), all-or-nothing when a key was used with another event
        (:class:`IdempotencyKeyReusedError`, nothing stored). This default, for third-party
        backends, publishes the events one at a time and stops at the first error (the
        events before it stay published).
        """
        return [
            await self.publish(
                item.topic, item.event, item.data, idempotency_key=item.idempotency_key
            )
            for item in events
        ]

    async def watch(self, topics: Sequence[str]) -> None:  # noqa: B027 - optional hook
        """Make sure live events of ``topics`` reach :meth:`EventSink.deliver`.

        Called after the subscriber was registered and before :meth:`snapshot`.
        """

    def unwatch(self, topic: str) -> None:  # noqa: B027 - optional hook
        """``topic`` has no local subscriber any more."""

    def stats(self) -> BackendStats:
        """The counters of what the backend went through on its own, read now (optional: a
        backend without a reader of its own has none to report)."""
        return BackendStats()

    @abstractmethod
    async def snapshot(self, topics: Sequence[str], last_event_id: str | None) -> Snapshot:
        """Decide where a subscriber to ``topics`` resumes, and how to read its missed events.

        Called when the handler subscribes, before the app admits the stream: it should cost
        a few operations per topic, and leave reading the events to the
        :attr:`Snapshot.replay`, which runs once the stream does.
        """

    async def read_history(
        self,
        topics: Sequence[str],
        after: str | None,
        until: str | None,
        limit: int,
        *,
        check_gaps: bool = True,
    ) -> HistoryPage:
        """Read at most ``limit`` events of ``topics`` after the id ``after`` (``None``: the
        oldest kept) and up to the id ``until`` (included; ``None``: the newest), as values.

        With ``check_gaps`` (and an ``after``), report the topics whose history no longer
        reaches back to ``after`` (and an ``after`` of another epoch, or not ours); without,
        read whatever is kept after it (the later pages of a read from the oldest).

        Optional for third-party backends: without it, ``Broadcaster.history`` and typed
        subscriptions raise ``NotImplementedError``.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot read history as messages")

    async def topic_of(self, event_id: str) -> str | None:
        """The topic of the event ``event_id``, while the backend still knows it; else
        ``None`` (optional for third-party backends, which then always answer ``None``)."""
        return None
