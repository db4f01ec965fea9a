"""What a stream iterates: its producer as an async source, its plain chunks, its closing.

Containers (lists, tuples, ranges...) cannot block, so they are iterated on the event loop by
the same send loop as async producers; any other sync iterator goes to a worker thread
(:mod:`~litestar_sse.asgi._threaded_iterator`).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, Final, Protocol, TypeAlias

__all__ = ("Push", "PushSource", "as_async_source", "close_producer", "encode_chunk")

Push: TypeAlias = Callable[[bytes], "bytes | Awaitable[None] | None"]
"""A stream's sink for chunks sent from outside its task (see :class:`PushSource`)."""


class PushSource(Protocol):
    """An async source that can also hand its chunks to the stream from its own pass (a
    broadcast subscription: the hub's pass over its idle subscribers), so an idle stream's
    task is not woken for each of them.

    The stream (on asyncio) calls :meth:`push_to` once, before it iterates. From then on,
    while the stream's task waits in ``__anext__``, the source may call ``push(chunk)``:

    * ``None``: the chunk was sent (or the stream stopped): the source takes its next one;
    * the chunk itself: the stream cannot send it now (a ping in flight, a stop, a chunk to
      send in slices): ``__anext__`` returns it, the stream sends it as any other;
    * an awaitable: the send started and waits (flow control); ``__anext__`` awaits it, in
      the stream's task, before anything else.

    The send runs in the request's context, as the stream's own sends and pings do.
    """

    def push_to(self, push: Push) -> None:
        """From now on, hand chunks to ``push`` while the stream waits for the next one."""


# Containers whose iteration cannot block: iterated inline, without a worker thread.
_INLINE_ITERABLES: Final = (list, tuple, range, dict, set, frozenset)


def as_async_source(source: Iterable[Any] | AsyncIterable[Any]) -> AsyncIterator[Any] | None:
    """The producer as an async iterator, or ``None`` for a sync iterator that may block."""
    if isinstance(source, _INLINE_ITERABLES):
        return _iterate_inline(source)
    if isinstance(source, AsyncIterable):
        return aiter(source)
    return None


async def _iterate_inline(items: Iterable[Any]) -> AsyncIterator[Any]:
    for item in items:
        yield item


def encode_chunk(chunk: Any, encoding: str) -> bytes:
    """A chunk of a plain :class:`~litestar_sse.Stream`: bytes as they are, str encoded."""
    if type(chunk) is bytes:
        return chunk
    if isinstance(chunk, str):
        return chunk.encode(encoding)
    if isinstance(chunk, (bytearray, memoryview)):
        return bytes(chunk)
    raise TypeError(f"Stream items must be str or bytes, got {type(chunk).__name__}")


async def close_producer(
    producer: object,
    logger: logging.Logger,
    failure: str = "Exception raised while closing the stream's producer",
) -> None:
    """Close a producer in the calling task, logging (not raising) what it raises.

    At the end of a stream, its async source: an async generator interrupted at a ``yield``
    runs its ``finally`` here, where it may await (one interrupted at an ``await`` already ran
    it; ``aclose()`` is then a no-op). For a body that is never sent (a ``HEAD`` request, a
    refused stream, a stop before the start, a client gone before the headers), the producer
    as given, sync generators included: its resources (a broadcast subscription, a
    generator's ``finally``) are released now, not by the garbage collector. A producer that
    never started runs no code.
    """
    aclose = getattr(producer, "aclose", None)
    try:
        if aclose is not None:
            await aclose()
        elif inspect.isgenerator(producer):
            producer.close()
    except Exception:
        logger.exception(failure)
