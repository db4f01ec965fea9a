"""``Broadcaster``: its settings, its lifecycle, publishing, and its stats.

Every read (subscribing, typed subscriptions, history, the topic of an id) is delegated to
the one :class:`~.pipeline.SubscriptionPipeline` it holds, where topic rule, authorization,
admission, replay and the authorization's watch are written once for all of them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from litestar_sse._plugin.sse_plugin import add_signature_name
from litestar_sse._validation import check_count, check_required_count
from litestar_sse.broadcast._app import join_app
from litestar_sse.broadcast._authorization import DEFAULT_AUTHORIZE_TIMEOUT, Authorize
from litestar_sse.broadcast._backends.base import (
    BackendUnavailableError,
    PublishOutcomeUnknownError,
)
from litestar_sse.broadcast._backends.memory.backend import MemoryBackend
from litestar_sse.broadcast._batch import (
    DEFAULT_MAX_BATCH,
    DEFAULT_MAX_BATCH_BYTES,
    BatchEvent,
    encode_batch,
)
from litestar_sse.broadcast._events.format import EventFormat, make_data_encoder
from litestar_sse.broadcast._hub.backlog import DEFAULT_MAX_QUEUE_BYTES
from litestar_sse.broadcast._hub.fanout import FanOut
from litestar_sse.broadcast._lifecycle import Lifecycle
from litestar_sse.broadcast._pipeline import DEFAULT_PAGE_SIZE, SubscriptionPipeline
from litestar_sse.broadcast._stats import BroadcastStats, read_stats
from litestar_sse.broadcast._topics import DEFAULT_MAX_TOPICS, check_idempotency_key, check_topic
from litestar_sse.codec._encoder import DEFAULT_SEPARATOR, to_utf8

if TYPE_CHECKING:
    from litestar.config.app import AppConfig
    from litestar.connection import ASGIConnection
    from litestar.types import TypeEncodersMap

    from litestar_sse._plugin.config import SSEConfig
    from litestar_sse.broadcast._backends.base import BroadcastBackend
    from litestar_sse.broadcast._events.values import HistoryItem
    from litestar_sse.broadcast._hub.subscription import Subscription
    from litestar_sse.broadcast._messages import MessageSubscription, Until
    from litestar_sse.broadcast._responses import SubscriptionResponse

__all__ = (
    "Authorize",
    "BroadcastStats",
    "Broadcaster",
    "OverflowPolicy",
)

OverflowPolicy: TypeAlias = Literal["drop_oldest", "disconnect"]
"""What happens to a subscriber that falls more than ``max_queue`` events or
``max_queue_bytes`` bytes behind."""


class Broadcaster:
    """Topics with history: publish events, subscribe with a ``ServerSentEvent`` response.

    Every event gets an id ``<epoch>-<position>`` that orders it among all events of all
    topics, so a client reconnecting with ``Last-Event-ID`` gets exactly the events it missed
    on all its topics, then live ones. When that is impossible (the id is from another epoch,
    is not one of ours, or the history no longer reaches back to it) the client gets a gap
    event (``event: gap``, JSON data with the ``reason``) and the ``SSE-Gap`` response header,
    then live events.

    Args:
        backend: Where events and their history live: :class:`MemoryBackend` (default, one
            process) or :class:`RedisStreamBackend` (many processes and machines).
        max_queue: Events of one topic a subscriber may fall behind before it counts as slow.
        max_queue_bytes: Bytes a subscriber may have queued and in flight (events it has not
            written yet) before it counts as slow, default 1 MiB; a single event larger than
            that is still delivered. ``None`` for no limit in bytes.
        overflow: The fate of a slow subscriber. ``"disconnect"`` (default) ends its stream;
            the client reconnects with ``Last-Event-ID`` and resumes from history, losing
            nothing the history still holds. ``"drop_oldest"`` keeps the stream, skips to the
            newest events within both limits and sends a gap event (reason ``"overflow"``).
        authorize: ``authorize(connection, topic)``, sync or async, asked for every topic of
            every read (a subscription of any kind, ``history``, ``topic_of``): ``False``
            answers ``403`` before the stream starts, ``True`` allows it, an
            :class:`~litestar_sse.broadcast.Authorization` allows it until its ``expires_at``
            (a token's expiry), when the stream ends cleanly with an ``unauthorized_event``.
        reauthorize_every: Seconds between two re-checks of an open subscription: every topic
            is put to ``authorize`` again, and a refusal (a revoked credential), an exception
            or no answer within ``authorize_timeout`` ends the stream the same way. ``None``
            (the default): asked once, when it opens.
        authorize_timeout: Seconds an async ``authorize`` may take to answer (default 10):
            longer is a refusal (``403`` when a subscription opens; the end of the stream on a
            re-check). A check that cannot complete never lets a client through.
        unauthorized_event: The event type of the last event of a stream whose authorization
            expired (``{"reason": "expired"}``) or was refused on a re-check
            (``{"reason": "revoked"}``); the client renews its credentials and reconnects.
        type_encoders: JSON encoders for published data, as in Litestar's responses. By
            default the app's ``type_encoders`` when the broadcaster is given to
            :class:`~litestar_sse.SSEConfig` (of the first app it is registered with).
        sep: Line separator of the events: ``"\\r\\n"``, ``"\\n"`` or ``"\\r"``. By default
            the ``sep`` of the :class:`~litestar_sse.SSEConfig` the broadcaster is given to,
            else ``"\\r\\n"``.
        gap_event: The event type of gap events.
        max_topics: Most topics one subscription may follow (default 100); a subscription
            asking for more raises :class:`~litestar_sse.broadcast.errors.TooManyTopicsError` (a
            ``400`` if unhandled). ``None`` for no limit.
        max_batch: Most events of one :meth:`publish_many` (default 1,000).
        max_batch_bytes: Most bytes of one :meth:`publish_many`: its events' data and event
            types, encoded (default 4 MiB).

    Topic names follow one rule, checked on every publish and subscription: a non-empty
    ``str`` of at most 256 bytes in UTF-8, without control characters or lone surrogates.
    Others raise :class:`~litestar_sse.broadcast.errors.InvalidTopicError` (a ``ValueError``, and a
    ``400`` if unhandled). Server code can read the same events as values: :meth:`history`,
    :meth:`subscribe_messages` and :meth:`topic_of`. Every read takes the same path (topic
    rule, ``authorize``, admission, replay, the watch of its authorization): see
    :mod:`~litestar_sse.broadcast._pipeline`.

    Use it as an async context manager, or call :meth:`start` and :meth:`close`; given to
    :class:`~litestar_sse.SSEConfig` (``broadcaster=``), the plugin does so from the app's
    lifespan. Publishing or subscribing starts it if needed, except after :meth:`close`.
    """

    def __init__(
        self,
        backend: BroadcastBackend | None = None,
        *,
        max_queue: int = 1000,
        max_queue_bytes: int | None = DEFAULT_MAX_QUEUE_BYTES,
        overflow: OverflowPolicy = "disconnect",
        authorize: Authorize | None = None,
        type_encoders: TypeEncodersMap | None = None,
        sep: str | None = None,
        gap_event: str = "gap",
        max_topics: int | None = DEFAULT_MAX_TOPICS,
        reauthorize_every: float | None = None,
        unauthorized_event: str = "unauthorized",
        authorize_timeout: float = DEFAULT_AUTHORIZE_TIMEOUT,
        max_batch: int = DEFAULT_MAX_BATCH,
        max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
    ) -> None:
        check_required_count(max_queue, "max_queue", minimum=1)
        self.max_batch = check_required_count(max_batch, "max_batch", minimum=1)
        self.max_batch_bytes = check_required_count(max_batch_bytes, "max_batch_bytes", minimum=1)
        max_queue_bytes = check_count(max_queue_bytes, "max_queue_bytes", minimum=1)
        self.max_topics = check_count(max_topics, "max_topics", minimum=1)
        if overflow not in ("drop_oldest", "disconnect"):
            raise ValueError(f"overflow must be 'drop_oldest' or 'disconnect', got {overflow!r}")
        self.backend: BroadcastBackend = backend if backend is not None else MemoryBackend()
        event_format = EventFormat(
            DEFAULT_SEPARATOR if sep is None else sep, gap_event, unauthorized_event
        )
        self._encode_data = make_data_encoder(type_encoders)
        # What the app may still choose (SSEConfig(broadcaster=...)): what was not set here.
        self._app_may_set = {"sep": sep is None, "type_encoders": type_encoders is None}
        self._fanout = FanOut(
            event_format,
            max_queue=max_queue,
            drop_oldest=overflow == "drop_oldest",
            on_idle=self.backend.unwatch,
            max_queue_bytes=max_queue_bytes,
        )
        self._life = Lifecycle(self.backend, self._fanout)
        self._reads = SubscriptionPipeline(
            backend=self.backend,
            fanout=self._fanout,
            ready=self._life.ready,
            authorize=authorize,
            reauthorize_every=reauthorize_every,
            authorize_timeout=authorize_timeout,
            max_topics=self.max_topics,
        )
        self.authorize = authorize
        self.reauthorize_every = self._reads.reauthorize_every
        self.backend.bind(self._fanout)
        self._published = 0

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the backend (connect to Redis, start its reader). Idempotent.

        After :meth:`close` it starts the broadcaster again: an app's lifespan may run more
        than once (test clients do), and the plugin starts and closes it in every one.
        """
        await self._life.start()

    async def close(self) -> None:
        """End every subscription (after what it holds) and stop the backend. Idempotent."""
        await self._life.close()

    async def __aenter__(self) -> Broadcaster:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def format(self) -> EventFormat:
        """How this broadcaster's events are written: the separator and the names of its gap
        and unauthorized events. Kept by its fan-out, which the backend writes events with."""
        return self._fanout.format

    def join_app(self, app_config: AppConfig, config: SSEConfig) -> None:
        """Join an app through ``SSEConfig(broadcaster=...)``; called by the plugin.

        Offers the ``broadcaster`` dependency (an app dependency of that name is kept), takes
        the app's separator and type encoders for what the constructor left unset, and starts
        with the app and closes after its streams ended.
        """
        join_app(self, app_config, config)

    def _use_app_defaults(
        self, *, sep: str | None = None, type_encoders: TypeEncodersMap | None = None
    ) -> None:
        """Take the app's separator and type encoders for what the constructor left unset.

        Called by :class:`~litestar_sse.SSEPlugin` when the app is created. Only before the
        first event is published: events already kept in history are not re-encoded.
        """
        if self._published or self._life.started:
            return
        if sep is not None and self._app_may_set["sep"]:
            self._fanout.format = EventFormat(
                sep, self.format.gap_event, self.format.unauthorized_event
            )
        if type_encoders and self._app_may_set["type_encoders"]:
            self._encode_data = make_data_encoder(type_encoders)
        self._app_may_set = {"sep": False, "type_encoders": False}

    # -- publishing --------------------------------------------------------------------------

    async def publish(
        self,
        topic: str,
        data: Any,
        *,
        event: str | None = None,
        idempotency_key: str | None = None,
    ) -> str:
        """Publish one event to ``topic`` and return its id.

        ``data`` is encoded once, here: ``str`` as text (line breaks become several ``data``
        lines), ``bytes`` as UTF-8 text, ``int`` in decimal, anything else (msgspec Struct,
        dataclass, dict, list, pydantic model, ...) as JSON. Never waits for subscribers.

        Args:
            topic: The topic (see the rule for topic names).
            data: The event's data.
            event: The event type.
            idempotency_key: Makes a retry safe: a publish with a key already used within
                the backend's ``idempotency_window`` (default 5 minutes, counted from when
                the first event was stored) stores nothing and returns the first event's id.
                Same rule as topic names. Use one key per message, for instance the
                client's message id or an ``Idempotency-Key`` request header.

        Raises:
            NotPublishedError: the backend (Redis) could not be reached; the event was not
                published (a ``503`` if unhandled). Retrying is safe.
            PublishOutcomeUnknownError: the publish reached Redis and no answer came in
                time: the event may have been published (``503``). Retry with the same
                ``idempotency_key`` to have it stored once.
            InvalidTopicError: an invalid topic (a ``ValueError``; ``400`` if unhandled).
            ValueError: an invalid event type or idempotency key (``400`` for the key), or
                an event type the broadcaster reserves for its own events (its ``gap_event``
                and ``unauthorized_event``): a client must not be able to forge them.
        """
        check_topic(topic)
        if idempotency_key is not None:
            check_idempotency_key(idempotency_key)
        event_bytes = None if event is None else to_utf8(self.format.check_event_type(event))
        payload = self._encode_data(data)
        if idempotency_key is None:
            (event_id,) = await self._stored(
                lambda: self.backend.publish(topic, event_bytes, payload)
            )
        else:
            (event_id,) = await self._stored(
                lambda: self.backend.publish(
                    topic, event_bytes, payload, idempotency_key=idempotency_key
                )
            )
        return event_id

    async def publish_many(self, events: Iterable[BatchEvent]) -> list[str]:
        """Publish a batch of events, in order, in one operation; return their ids in order.

        Each :class:`BatchEvent` has its own topic, data, event type and idempotency key, and
        is published as :meth:`publish` would publish it (a key used by an earlier event of
        the batch makes a repeat of that event, with its id). The whole batch is checked
        before anything is published: a bad item, more than ``max_batch`` events or
        ``max_batch_bytes`` bytes, a reserved event type or data that cannot be encoded
        raise here, and nothing of the batch is published. On Redis the batch is one script,
        one round trip, that Redis runs whole: every event is stored, or none; in memory it
        is stored at once too. (A third-party backend without a ``publish_many`` of its own
        publishes the events one at a time, and stops at the first error.)

        Args:
            events: The events, as :class:`BatchEvent` values (checked when made).

        Raises:
            TypeError: an item is not a ``BatchEvent``, or its data cannot be encoded.
            ValueError: the batch is over ``max_batch`` or ``max_batch_bytes`` (the message
                names the setting), or an event type is reserved (it names the index).
            IdempotencyKeyReusedError: a key was used on its topic with another event
                (``409``): nothing of the batch was published.
            TooManyIdempotencyKeysError: (memory) the batch's new keys do not fit (``429``):
                nothing published.
            NotPublishedError: Redis could not be reached: nothing was published. Retrying
                is safe.
            PublishOutcomeUnknownError: the batch reached Redis and no answer came in time:
                all of it may have been published, or none (never a part). Retry the whole
                batch with an ``idempotency_key`` on each event to have each stored once.
        """
        batch = encode_batch(
            events, self.format, self._encode_data, self.max_batch, self.max_batch_bytes
        )
        if not batch:
            return []
        return await self._stored(lambda: self.backend.publish_many(batch))

    async def _stored(self, publish: Callable[[], Awaitable[str | list[str]]]) -> list[str]:
        """Run ``publish`` once the backend is ready; count what it stored, and a backend
        error by what it means (not published, or maybe published)."""
        await self._life.ready()
        try:
            stored = await publish()
        except BackendUnavailableError as exc:
            unknown = isinstance(exc, PublishOutcomeUnknownError)
            self._fanout.note_error("outcome_unknown" if unknown else "not_published")
            raise
        ids = [stored] if isinstance(stored, str) else stored
        self._published += len(ids)
        return ids

    # -- reading: every path goes through the pipeline ----------------------------------------

    async def subscribe(
        self,
        topics: str | Iterable[str],
        *,
        last_event_id: str | None = None,
        connection: ASGIConnection[Any, Any, Any, Any],
        **response_kwargs: Any,
    ) -> SubscriptionResponse:
        """Subscribe to ``topics``; return the response that streams their events.

        Return it from a handler. A client resuming with ``Last-Event-ID`` first gets the
        events it missed, then live ones. The response carries ``SSE-Resumed-From`` (the id
        its events start after) and, when events were missed for good, ``SSE-Gap`` (the
        reason: ``invalid``, ``epoch``, ``retention``) with a gap event.

        Args:
            topics: One topic or several.
            last_event_id: Resume after this id; by default read from ``connection``.
            connection: The request (required): for ``authorize`` and ``Last-Event-ID``.
            response_kwargs: Passed to :class:`~litestar_sse.ServerSentEvent`
                (``ping_interval``, ``send_timeout``, ``headers``, ``on_disconnect``, ...).

        Raises:
            TypeError: no ``connection`` (at the call: pass ``connection=request``).
            InvalidTopicError: an invalid topic, or none (``400``).
            TooManyTopicsError: more topics than ``max_topics`` (``400``).
            PermissionDeniedException: ``authorize`` refused a topic (``403``).
            BackendUnavailableError: the backend cannot be reached (``503``).
        """
        return await self._reads.subscribe(topics, last_event_id, connection, response_kwargs)

    async def open_subscription(
        self,
        topics: str | Iterable[str],
        *,
        last_event_id: str | None = None,
        connection: ASGIConnection[Any, Any, Any, Any] | None = None,
    ) -> Subscription:
        """Subscribe to ``topics`` and return the :class:`Subscription` (an async iterator).

        Its authorization is watched while it is read: at the expiry or a refused re-check
        it yields the ``unauthorized_event`` and ends.

        Args:
            topics: One topic or several.
            last_event_id: Resume after this id; by default the client's (``Last-Event-ID``
                or ``lastEventId``; one no event can have is an ``"invalid"`` gap).
            connection: The request, for ``authorize`` and ``Last-Event-ID``.

        Raises:
            InvalidTopicError, TooManyTopicsError, PermissionDeniedException,
            BackendUnavailableError: as :meth:`subscribe`.
        """
        return await self._reads.open_subscription(topics, last_event_id, connection)

    async def subscribe_messages(
        self,
        topics: str | Iterable[str],
        *,
        last_event_id: str | None = None,
        connection: ASGIConnection[Any, Any, Any, Any] | None = None,
        until: Until | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> MessageSubscription:
        """Subscribe to ``topics`` and get values: the backlog, a marker, then live events.

        The :class:`MessageSubscription` yields the events after ``last_event_id`` as
        :class:`BroadcastMessage` values (read ``page_size`` at a time; a :class:`Gap` where
        some cannot be replayed), one :class:`BacklogEnd`, then live events, each exactly
        once; at its authorization's end (expiry, refused re-check), an
        :class:`AuthorizationEnded` and nothing more.

        Args:
            topics: One topic or several.
            last_event_id: Replay the events after this id (none: no backlog); by default
                read from ``connection`` as :meth:`subscribe` does.
            connection: The request, for ``authorize`` and ``Last-Event-ID``.
            until: ``until(message) -> bool``: end right after the first message it is true
                of, such as the reply that closes a request's stream.
            page_size: Events read from history at once.

        Raises:
            InvalidTopicError, TooManyTopicsError, PermissionDeniedException,
            BackendUnavailableError: as :meth:`subscribe`.
            TypeError, ValueError: a bad ``until``, ``last_event_id`` or ``page_size``.
        """
        return await self._reads.subscribe_messages(
            topics, last_event_id, connection, until, page_size
        )

    def history(
        self,
        topics: str | Iterable[str],
        *,
        after: str | None = None,
        until: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        connection: ASGIConnection[Any, Any, Any, Any] | None = None,
    ) -> AsyncIterator[HistoryItem]:
        """The kept events of ``topics`` as :class:`BroadcastMessage` values, in order.

        ``async for item in broadcaster.history("jobs:7", after=last_id): ...``, read
        ``page_size`` events at a time. Where events after ``after`` cannot be read (a
        foreign id, another epoch, trimmed history), a :class:`Gap` comes first (or where it
        was found, if the history is trimmed while being read).

        Args:
            topics: One topic or several (their events are merged in publication order).
            after: Read the events after this id; ``None``: from the oldest kept.
            until: Read up to this id, included; ``None``: up to the newest.
            page_size: Events read from the backend at once.
            connection: The request, for ``authorize`` (on the first iteration; a refusal,
                or an expiry before the next page, raises ``PermissionDeniedException``).

        Raises:
            InvalidTopicError: an invalid topic, or none (at the call).
            TooManyTopicsError: more topics than ``max_topics`` (at the call).
            TypeError, ValueError: a bad ``after``, ``until`` or ``page_size`` (at the call;
                an ``until`` that is no id of this history, on the first iteration).
        """
        return self._reads.history(topics, after, until, page_size, connection)

    async def topic_of(
        self, event_id: str, *, connection: ASGIConnection[Any, Any, Any, Any] | None = None
    ) -> str | None:
        """The topic of the event ``event_id``, or ``None`` if it is unknown.

        For clients that resume with nothing but an id (MCP's ``Last-Event-ID``). A few
        operations per call whatever the id: both backends answer while the event is kept
        and among the newest 100,000 events; older, foreign or malformed ids are ``None``.
        An id is client input: when ``authorize`` refuses the topic for ``connection`` (or
        does not answer in time), the answer is ``None`` too.

        Raises:
            TypeError: ``event_id`` is not a ``str``.
            BackendUnavailableError: the backend cannot be reached (``503``).
        """
        return await self._reads.topic_of(event_id, connection)

    # -- metrics -----------------------------------------------------------------------------

    def stats(self) -> BroadcastStats:
        """A snapshot of the counters: a few operations per topic, none per subscriber."""
        return read_stats(self._fanout, self._published, self.backend)


# Handler annotations naming Broadcaster resolve in every app the plugin serves, as those naming
# ServerSentEvent do, even where the app module imports it only for type checking.
add_signature_name("Broadcaster", Broadcaster)
