"""Generator handlers: a route handler that yields items streams them as Server-Sent Events.

With :class:`~litestar_sse.SSEPlugin` registered, a route handler is an *event-stream handler*
when both hold:

* its route decorator says ``media_type="text/event-stream"``, and
* its return annotation is ``AsyncIterator[T]``, ``AsyncIterable[T]``, ``AsyncGenerator[T, ...]``,
  ``Iterator[T]``, ``Iterable[T]`` or ``Generator[T, ...]`` (typing or collections.abc).

The handler may be a sync or async generator function, or any function returning such an
iterator. Litestar treats generator functions as synchronous callables and warns unless the
decorator says ``sync_to_thread=False`` (right: creating a generator never blocks). The
:func:`event_stream` marker does both at once: it marks the handler as an event stream (no
``media_type`` needed) and presents a generator function to Litestar as a coroutine function
returning the generator, so there is no warning and no thread.

Litestar turns a handler's return value into a response with the route's ``response_class``:
the plugin sets that, on these handlers only, to a :class:`GeneratorSSEResponse` subclass that
knows ``T``. Everything a route handler can do keeps working (any HTTP method, guards,
dependencies, ``after_request``, ``status_code``, ``response_headers``, ``type_encoders``).

Items are encoded like the items of :class:`~litestar_sse.ServerSentEvent`, and the app's
:class:`~litestar_sse.SSEConfig` defaults apply. When ``T`` is a type (not ``Any``):

* an item that is an instance of ``T``'s runtime class is sent as is (one ``type()`` or
  ``isinstance`` check per item);
* any other item is converted to ``T`` first: ``msgspec.convert`` (dicts to Structs, dataclasses
  or TypedDicts, with validation) or ``model_validate`` for pydantic models. An item that does
  not convert ends the stream, and the error is logged, as any producer error;
* ``ServerSentEventMessage`` and ``RawEvent`` items always pass through, so
  ``AsyncIterator[Token | ServerSentEventMessage]`` can mix data with fully specified events;
* when ``T`` is a mapping (``dict[str, int]``, a ``TypedDict``), a yielded dict is JSON ``data``,
  not a dict of message fields as it is for untyped streams.
"""

from __future__ import annotations

import collections.abc
import typing
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Union, get_args, get_origin

import msgspec

from litestar_sse._message import ItemEncoder, is_message_type, make_item_encoder
from litestar_sse._plugin.event_stream import RouteDefaults
from litestar_sse._response import ServerSentEvent, StreamContent, StreamDefaults

if TYPE_CHECKING:
    from litestar.background_tasks import BackgroundTask, BackgroundTasks
    from litestar.types import ResponseCookies, ResponseHeaders, TypeEncodersMap

__all__ = ("GeneratorSSEResponse", "make_generator_response_class")


class _ItemAdapter:
    """Checks and converts the items of a typed stream."""

    __slots__ = ("convert", "exact", "json_only", "runtime_types")

    def __init__(
        self,
        exact: type | None,
        runtime_types: tuple[type, ...],
        convert: Callable[[Any], Any],
        json_only: bool,
    ) -> None:
        self.exact = exact
        self.runtime_types = runtime_types
        self.convert = convert
        self.json_only = json_only


def _without_messages(item_type: Any) -> Any:
    """``item_type`` without its message members; ``None`` if nothing else is left."""
    if _is_union(item_type):
        members = [m for m in get_args(item_type) if not is_message_type(m)]
        if not members:
            return None
        return members[0] if len(members) == 1 else Union[tuple(members)]  # noqa: UP007
    return None if is_message_type(item_type) else item_type


def _is_union(annotation: Any) -> bool:
    origin = get_origin(annotation)
    return origin is Union or type(annotation).__name__ == "UnionType"


def _runtime_class(annotation: Any) -> type | None:
    if get_origin(annotation) is typing.Annotated:
        annotation = get_args(annotation)[0]
    if _is_typeddict(annotation):
        return dict
    origin = get_origin(annotation)
    if isinstance(origin, type):
        return origin
    return annotation if isinstance(annotation, type) else None


def _is_typeddict(annotation: Any) -> bool:
    return (
        isinstance(annotation, type)
        and issubclass(annotation, dict)
        and hasattr(annotation, "__total__")
    )


def _is_pydantic_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and callable(getattr(annotation, "model_validate", None))


def make_item_adapter(item_type: Any) -> _ItemAdapter | None:
    """Return the check-and-convert step for items of ``item_type``; ``None`` for untyped."""
    if item_type is Any or item_type is object:
        return None
    payload = _without_messages(item_type)
    if payload is None or payload is Any:
        return None
    members = get_args(payload) if _is_union(payload) else (payload,)
    classes = tuple(cls for cls in map(_runtime_class, members) if cls is not None)
    # A check on the runtime class only ever admits the member types: anything else converts.
    runtime_types = classes if len(classes) == len(members) else ()
    json_only = any(
        issubclass(cls, collections.abc.Mapping) for cls in classes
    ) and not _is_pydantic_model(payload)
    convert: Callable[[Any], Any]
    if _is_pydantic_model(payload):
        convert = payload.model_validate
    else:
        try:
            msgspec.json.Decoder(payload)
        except TypeError:  # msgspec cannot convert to it: check the runtime class only
            convert = _unconverted
        else:

            def convert(item: Any) -> Any:
                return msgspec.convert(item, payload, from_attributes=True)

    exact = payload if isinstance(payload, type) and not _is_typeddict(payload) else None
    return _ItemAdapter(exact, runtime_types, convert, json_only)


def _unconverted(item: Any) -> Any:
    return item


class GeneratorSSEResponse(ServerSentEvent):
    """The response of an event-stream generator handler (see the module documentation).

    Litestar instantiates the route's ``response_class`` with the handler's return value, so
    this takes the keyword arguments Litestar passes (``media_type`` is ignored: the stream is
    always ``text/event-stream``). Every SSE setting comes from the app's
    :class:`~litestar_sse.SSEConfig`. Use :func:`make_generator_response_class` to get a
    subclass that validates items of a given type.
    """

    __slots__ = ()

    item_type: ClassVar[Any] = Any
    """The ``T`` of the handler's ``AsyncIterator[T]`` (or other stream) annotation."""

    route_settings: ClassVar[Mapping[str, Any]] = {}
    """The route's stream settings over the app's (see :func:`~litestar_sse.event_stream`)."""

    _adapter: ClassVar[_ItemAdapter | None] = None

    def __init__(
        self,
        content: StreamContent | Callable[[], StreamContent],
        *,
        background: BackgroundTask | BackgroundTasks | None = None,
        cookies: ResponseCookies | None = None,
        encoding: str = "utf-8",
        headers: ResponseHeaders | None = None,
        media_type: Any = None,
        status_code: int | None = None,
        type_encoders: TypeEncodersMap | None = None,
    ) -> None:
        super().__init__(
            content,
            background=background,
            cookies=cookies,
            encoding=encoding,
            headers=headers,
            status_code=status_code,
            type_encoders=type_encoders,
        )

    def stream_defaults(self, config: StreamDefaults) -> StreamDefaults:
        """The app's defaults with the route's settings over them."""
        return RouteDefaults(config, self.route_settings) if self.route_settings else config

    def make_item_encoder(
        self,
        *,
        event: str | None,
        id: str | int | None,
        retry: int | None,
        comment: str | None,
        sep: str,
        json_encode: Callable[[Any], bytes],
    ) -> ItemEncoder:
        """Return the item encoder, with the check and conversion for :attr:`item_type`."""
        encode = super().make_item_encoder(
            event=event, id=id, retry=retry, comment=comment, sep=sep, json_encode=json_encode
        )
        adapter = self._adapter
        if adapter is None:
            return encode
        exact, runtime_types, convert = adapter.exact, adapter.runtime_types, adapter.convert
        if adapter.json_only:  # a stream of mappings: a dict is data, not event fields
            encode = make_item_encoder(
                event=event,
                id=id,
                retry=retry,
                comment=comment,
                sep=sep,
                json_encode=json_encode,
                dicts_are_data=True,
            )

        def encode_typed_item(item: Any) -> bytes:
            if type(item) is not exact and not isinstance(item, runtime_types):
                if is_message_type(type(item)):
                    return encode(item)
                item = convert(item)
            return encode(item)

        return encode_typed_item


def make_generator_response_class(
    item_type: Any, settings: Mapping[str, Any] | None = None
) -> type[GeneratorSSEResponse]:
    """Return a :class:`GeneratorSSEResponse` subclass for streams of ``item_type`` items,
    with the route's stream ``settings`` (checked by
    :func:`~litestar_sse._plugin.event_stream.route_settings`)."""
    if item_type is Any and not settings:
        return GeneratorSSEResponse
    name = getattr(item_type, "__name__", None) or "Typed"
    return type(
        f"GeneratorSSEResponse[{name}]",
        (GeneratorSSEResponse,),
        {
            "__slots__": (),
            "__module__": __name__,
            "item_type": item_type,
            "route_settings": dict(settings or {}),
            "_adapter": make_item_adapter(item_type),
        },
    )
