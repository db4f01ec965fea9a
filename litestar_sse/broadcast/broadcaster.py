"""``Broadcaster``: its settings, its lifecycle, publishing, and its stats.

Subscribing is in its base :class:`~.subscribing.BroadcastSubscribing`, reading history as
values in :class:`~.reads.BroadcastReads`.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from litestar_sse.broadcast.app import join_app
from litestar_sse.broadcast.authorization import Authorize
from litestar_sse.broadcast.backend import BackendUnavailableError, PublishOutcomeUnknownError
from litestar_sse.broadcast.backlog import DEFAULT_MAX_QUEUE_BYTES
from litestar_sse.broadcast.encoding import EventFormat, make_data_encoder
from litestar_sse.broadcast.fanout import FanOut
from litestar_sse.broadcast.memory import MemoryBackend
from litestar_sse.broadcast.stats import BroadcastStats, read_stats
from litestar_sse.broadcast.subscribing import BroadcastSubscribing
from litestar_sse.broadcast.topics import DEFAULT_MAX_TOPICS, check_idempotency_key, check_topic
from litestar_sse.codec.encoder import DEFAULT_SEPARATOR, check_event_type, to_utf8
from litestar_sse.plugin.sse_plugin import add_signature_name
from litestar_sse.validation import check_count, check_required_count, check_seconds

if TYPE_CHECKING:
    from types import TracebackType

    from litestar.config.app import AppConfig
    from litestar.types import TypeEncodersMap

    from litestar_sse.broadcast.backend import BroadcastBackend
    from litestar_sse.plugin.config import SSEConfig

__all__ = (
    "Authorize",
    "BroadcastStats",
    "Broadcaster",
    "OverflowPolicy",
)

OverflowPolicy: TypeAlias = Literal["drop_oldest", "disconnect"]
"""What happens to a subscriber that falls more than ``max_queue`` events or
``max_queue_bytes`` bytes behind."""


class Broadcaster(BroadcastSubscribing):
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
            every subscription: ``False`` answers ``403`` before the stream starts, ``True``
            allows it, an :class:`~litestar_sse.broadcast.Authorization` allows it until its
            ``expires_at`` (a token's expiry), when the stream ends cleanly with an
            ``unauthorized_event``.
        reauthorize_every: Seconds between two re-checks of an open subscription: every topic
            is put to ``authorize`` again, and a refusal (a revoked credential) ends the
            stream the same way. ``None`` (the default): asked once, when it opens.
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
            asking for more raises :class:`~litestar_sse.broadcast.TooManyTopicsError` (a
            ``400`` if unhandled). ``None`` for no limit.

    Topic names follow one rule, checked on every publish and subscription: a non-empty
    ``str`` of at most 256 bytes in UTF-8, without control characters or lone surrogates.
    Others raise :class:`~litestar_sse.broadcast.InvalidTopicError` (a ``ValueError``, and a
    ``400`` if unhandled).

    Server code can read the same events as values: :meth:`history`,
    :meth:`subscribe_messages` (a backlog, a marker, then live events, ending after a chosen
    event) and :meth:`topic_of` (the topic of an id).

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
    ) -> None:
        check_required_count(max_queue, "max_queue", minimum=1)
        max_queue_bytes = check_count(max_queue_bytes, "max_queue_bytes", minimum=1)
        self.max_topics = check_count(max_topics, "max_topics", minimum=1)
        if overflow not in ("drop_oldest", "disconnect"):
            raise ValueError(f"overflow must be 'drop_oldest' or 'disconnect', got {overflow!r}")
        self.backend: BroadcastBackend = backend if backend is not None else MemoryBackend()
        self.format = EventFormat(
            DEFAULT_SEPARATOR if sep is None else sep, gap_event, unauthorized_event
        )
        self.authorize = authorize
        self.reauthorize_every = check_seconds(reauthorize_every, "reauthorize_every")
        if reauthorize_every is not None and authorize is None:
            raise ValueError("reauthorize_every needs an authorize callable")
        self._encode_data = make_data_encoder(type_encoders)
        # What the app may still choose (SSEConfig(broadcaster=...)): what was not set here.
        self._app_may_set = {"sep": sep is None, "type_encoders": type_encoders is None}
        self._fanout = FanOut(
            self.format,
            max_queue=max_queue,
            drop_oldest=overflow == "drop_oldest",
            on_idle=self.backend.unwatch,
            max_queue_bytes=max_queue_bytes,
        )
        self.backend.bind(self._fanout)
        self._published = 0
        self._starting: asyncio.Future[None] | None = None
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the backend (connect to Redis, start its reader). Idempotent.

        After :meth:`close` it starts the broadcaster again: an app's lifespan may run more
        than once (test clients do), and the plugin starts and closes it in every one.
        """
        if self._closed:
            self._closed = False
            self._starting = None
        if self._starting is None:
            self._starting = asyncio.get_running_loop().create_future()
            try:
                await self.backend.start()
            except BaseException as exc:
                self._starting.set_exception(exc)
                self._starting.exception()  # retrieved: callers see it below
                self._starting = None
                raise
            self._starting.set_result(None)
        await asyncio.shield(self._starting)

    async def close(self) -> None:
        """End every subscription (after what it holds) and stop the backend. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._fanout.end_all()
        if self._starting is not None:
            await self.backend.close()

    async def __aenter__(self) -> Broadcaster:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def _ready(self) -> None:
        if self._closed:
            # Never restarted behind the app's back: a task still publishing after shutdown
            # would otherwise reconnect to Redis and leak the connection.
            raise RuntimeError("This Broadcaster is closed")
        if self._starting is None or not self._starting.done():
            await self.start()

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
        if self._published or self._starting is not None:
            return
        if sep is not None and self._app_may_set["sep"]:
            self.format = self._fanout.format = EventFormat(
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
            ValueError: an invalid event type or idempotency key (``400`` for the key).
        """
        check_topic(topic)
        if idempotency_key is not None:
            check_idempotency_key(idempotency_key)
        event_bytes = None if event is None else to_utf8(check_event_type(event))
        payload = self._encode_data(data)
        await self._ready()
        try:
            if idempotency_key is None:
                event_id = await self.backend.publish(topic, event_bytes, payload)
            else:
                event_id = await self.backend.publish(
                    topic, event_bytes, payload, idempotency_key=idempotency_key
                )
        except BackendUnavailableError as exc:
            unknown = isinstance(exc, PublishOutcomeUnknownError)
            self._fanout.errors["outcome_unknown" if unknown else "not_published"] += 1
            raise
        self._published += 1
        return event_id

    # -- metrics -----------------------------------------------------------------------------

    def stats(self) -> BroadcastStats:
        """A snapshot of the counters: a few operations per topic, none per subscriber."""
        return read_stats(self._fanout, self._published, self.backend)


# Handler annotations naming Broadcaster resolve in every app the plugin serves, as those naming
# ServerSentEvent do, even where the app module imports it only for type checking.
add_signature_name("Broadcaster", Broadcaster)
