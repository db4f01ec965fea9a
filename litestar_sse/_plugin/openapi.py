"""OpenAPI for event streams: ``text/event-stream`` responses described event by event.

Follows OpenAPI 3.2 §4.14.4 "Special Considerations for Server-Sent Events": an event is
modeled as an object with the fields ``data``, ``event``, ``id`` (strings) and ``retry`` (an
integer >= 0); comments are not modeled. When the handler declares the type ``T`` of its items,
``data`` is described as a string holding JSON (``contentMediaType: application/json``) whose
``contentSchema`` is the schema of ``T``, registered in ``components`` like any other model.

Litestar (2.x and 3.0) writes OpenAPI 3.1.0 documents, where the Media Type Object has no
``itemSchema`` (3.1 validators reject it). By default the event schema is therefore the
``schema`` of the ``text/event-stream`` media type, the convention of 3.0/3.1 tooling
(Schemathesis, Speakeasy, Swagger UI) for streams. With ``SSEConfig(openapi_item_schema=True)``
it is written as 3.2's ``itemSchema`` instead, for documents published as OpenAPI 3.2.

Two hooks, both per handler and set when routes are registered:

* generator handlers: their return annotation (``AsyncIterator[T]`` ...) reaches the schema
  generator, where :class:`SSESchemaPlugin` answers with the event schema (for exactly these
  annotation objects, nothing else);
* handlers returning a ``ServerSentEvent``: Litestar documents the content of any ``Response``
  subclass as ``Any``; the handler's ``operation_class`` is wrapped to put the generic event
  schema under ``text/event-stream`` (and to move it to ``itemSchema`` in 3.2 mode).
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, Operation, Schema
from litestar.openapi.spec.enums import OpenAPIType
from litestar.plugins import OpenAPISchemaPlugin
from litestar.typing import FieldDefinition

from litestar_sse._plugin.event_stream import EVENT_STREAM
from litestar_sse._plugin.handlers import _is_union, _without_messages

if TYPE_CHECKING:
    from litestar.openapi.spec import Reference

    from litestar_sse._compat import SchemaCreator

__all__ = ("SSEMediaType", "SSESchemaPlugin", "event_schema", "sse_operation_class")

EVENT_DESCRIPTION: Final = (
    "One Server-Sent Event of the text/event-stream response (OpenAPI 3.2, 4.14.4): the fields "
    "of the event after parsing; comments (such as keep-alive pings) are not modeled."
)


@dataclass
class SSEMediaType(OpenAPIMediaType):
    """A Media Type Object with OpenAPI 3.2's ``itemSchema``: the schema of each streamed item."""

    item_schema: Schema | Reference | None = None


def event_schema(data: Schema | Reference | None = None) -> Schema:
    """The schema of one event: ``data``, ``event``, ``id`` and ``retry``.

    Args:
        data: The schema of the ``data`` field; a plain string by default.
    """
    return Schema(
        type=OpenAPIType.OBJECT,
        required=["data"],
        properties={
            "data": data if data is not None else Schema(type=OpenAPIType.STRING),
            "event": Schema(type=OpenAPIType.STRING),
            "id": Schema(type=OpenAPIType.STRING),
            "retry": Schema(type=OpenAPIType.INTEGER, minimum=0),
        },
        description=EVENT_DESCRIPTION,
    )


def data_schema(item_type: Any, schema_creator: SchemaCreator) -> Schema:
    """The schema of the ``data`` field of events made from items of ``item_type``."""
    payload = _without_messages(item_type)
    members = typing.get_args(payload) if _is_union(payload) else (payload,)
    if payload is None or payload is Any or any(m in (str, bytes) for m in members):
        # raw text (str/bytes items are sent verbatim), or anything at all
        return Schema(type=OpenAPIType.STRING)
    content = schema_creator.for_field_definition(FieldDefinition.from_annotation(payload))
    return Schema(
        type=OpenAPIType.STRING,
        content_media_type="application/json",
        content_schema=content,
    )


class SSESchemaPlugin(OpenAPISchemaPlugin):
    """Describes the return annotations of generator handlers as one event each.

    Only the exact annotation objects registered with :meth:`register` are handled, so
    ``AsyncIterator`` types elsewhere (a parameter, a DTO field) keep Litestar's behaviour.
    """

    __slots__ = ("_streams",)

    def __init__(self) -> None:
        self._streams: dict[int, tuple[FieldDefinition, Any]] = {}

    def register(self, return_type: FieldDefinition, item_type: Any) -> None:
        """Describe ``return_type`` (a handler's parsed return annotation) as a stream."""
        self._streams[id(return_type)] = (return_type, item_type)

    def is_plugin_supported_field(self, field_definition: FieldDefinition) -> bool:
        """True for the registered return annotations only."""
        entry = self._streams.get(id(field_definition))
        return entry is not None and entry[0] is field_definition

    def to_openapi_schema(
        self, field_definition: FieldDefinition, schema_creator: SchemaCreator
    ) -> Schema:
        """The schema of one event of the stream."""
        _, item_type = self._streams[id(field_definition)]
        return event_schema(data_schema(item_type, schema_creator))


_OPERATION_CLASSES: dict[tuple[type[Operation], bool, bool], type[Operation]] = {}


def sse_operation_class(
    base: type[Operation], *, generic_schema: bool, item_schema: bool
) -> type[Operation]:
    """Return a subclass of ``base`` that documents its success responses as event streams.

    Args:
        base: The handler's ``operation_class``.
        generic_schema: Replace the response schema by the generic event schema (handlers
            returning ``ServerSentEvent``, whose items have no declared type).
        item_schema: Write the event schema as ``itemSchema`` (OpenAPI 3.2) instead of
            ``schema``.
    """
    key = (base, generic_schema, item_schema)
    cls = _OPERATION_CLASSES.get(key)
    if cls is None:

        def __init__(self: Operation, *args: Any, **kwargs: Any) -> None:
            base.__init__(self, *args, **kwargs)
            _rewrite_responses(self, generic_schema=generic_schema, item_schema=item_schema)

        cls = type(
            f"SSE{base.__name__}",
            (base,),
            {"__init__": __init__, "documents_event_stream": True},
        )
        _OPERATION_CLASSES[key] = cls
    return cls


def _rewrite_responses(operation: Operation, *, generic_schema: bool, item_schema: bool) -> None:
    for status, response in (operation.responses or {}).items():
        if not status.startswith("2") or not isinstance(response, OpenAPIResponse):
            continue
        content = response.content or {}
        for media_type in list(content):
            if media_type.split(";", 1)[0].strip().lower() != EVENT_STREAM:
                continue
            old = content[media_type]
            schema = event_schema() if generic_schema else old.schema
            if item_schema:
                content[media_type] = SSEMediaType(
                    item_schema=schema,
                    example=old.example,
                    examples=old.examples,
                    encoding=old.encoding,
                )
            else:
                old.schema = schema
