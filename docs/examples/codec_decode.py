"""``EventDecoder``: bytes in, events out, whatever the chunk boundaries."""

from litestar_sse.codec import DecodedComment, DecodedEvent, EventDecoder, decode_stream

decoder = EventDecoder()

# Chunks may split anything: a field name, a UTF-8 sequence, a CRLF pair.
assert decoder.feed(b"event: greet") == []
assert decoder.feed(b"ing\r\nid: 1\r\ndata: caf\xc3") == []
assert decoder.feed(b"\xa9\r") == []
assert decoder.feed(b"\n\r\n") == [DecodedEvent(data="café", event="greeting", id="1")]

# Comments are skipped by feed() and reported, in order, by feed_with_comments().
assert decoder.feed_with_comments(b": ping\n\ndata: x\n\n") == [
    DecodedComment("ping"),
    DecodedEvent(data="x", id="1"),  # the last event id persists until a new one arrives
]

# At the end of a response, close() drops a half-received event, as a browser would.
decoder.feed(b"id: 2\ndata: never finished\n")
decoder.close()
assert decoder.last_event_id == "1"  # what a reconnecting client sends as Last-Event-ID

# For a body already in memory, decode_stream() does all of the above in one call.
events = decode_stream(b"data: a\n\nretry: 500\ndata: b\n\n")
assert [event.data for event in events] == ["a", "b"]
assert events[1].retry == 500
